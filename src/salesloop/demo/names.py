"""Word lists the demo generator composes Chinese people, companies and leads from.

Pinyin rides along with each word so that e-mail addresses and domains are plausible ASCII.
Brands are invented two-character names; well-known real companies are avoided on purpose.
"""

from __future__ import annotations

from itertools import accumulate

# The most common surnames, roughly in order of frequency; weights favour the head of the list.
SURNAMES: list[tuple[str, str]] = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
    ("高", "gao"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("袁", "yuan"),
    ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"),
    ("任", "ren"), ("沈", "shen"),
]  # fmt: skip
SURNAME_CUM_WEIGHTS: list[float] = list(accumulate(1.0 / (1 + i * 0.15) for i in range(len(SURNAMES))))

GIVEN_NAMES: list[tuple[str, str]] = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"),
    ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("桂英", "guiying"), ("建华", "jianhua"),
    ("晓东", "xiaodong"), ("志强", "zhiqiang"), ("海燕", "haiyan"), ("文博", "wenbo"), ("子涵", "zihan"),
    ("思远", "siyuan"), ("雨桐", "yutong"), ("浩然", "haoran"), ("欣怡", "xinyi"), ("俊杰", "junjie"),
    ("婷婷", "tingting"), ("建国", "jianguo"), ("晓红", "xiaohong"), ("凯", "kai"), ("鹏", "peng"),
    ("辉", "hui"), ("宇", "yu"), ("斌", "bin"), ("慧", "hui"), ("琳", "lin"), ("颖", "ying"),
    ("倩", "qian"), ("晨", "chen"), ("博", "bo"), ("佳怡", "jiayi"), ("一鸣", "yiming"),
    ("梓轩", "zixuan"), ("嘉欣", "jiaxin"), ("立新", "lixin"), ("红梅", "hongmei"), ("国强", "guoqiang"),
    ("振华", "zhenhua"), ("春燕", "chunyan"), ("少华", "shaohua"), ("晓峰", "xiaofeng"), ("雪", "xue"),
    ("萍", "ping"), ("天宇", "tianyu"), ("雅琴", "yaqin"), ("永刚", "yonggang"), ("文静", "wenjing"),
]  # fmt: skip

BRANDS: list[tuple[str, str]] = [
    ("华信", "huaxin"), ("博远", "boyuan"), ("瑞丰", "ruifeng"), ("中科", "zhongke"), ("金桥", "jinqiao"),
    ("天润", "tianrun"), ("恒通", "hengtong"), ("宏达", "hongda"), ("鼎盛", "dingsheng"),
    ("卓越", "zhuoyue"), ("领航", "linghang"), ("云帆", "yunfan"), ("星辰", "xingchen"), ("海纳", "haina"),
    ("新源", "xinyuan"), ("安泰", "antai"), ("远景", "yuanjing"), ("智达", "zhida"), ("晨光", "chenguang"),
    ("永盛", "yongsheng"), ("嘉和", "jiahe"), ("汇智", "huizhi"), ("明德", "mingde"), ("锐思", "ruisi"),
    ("启明", "qiming"), ("信达", "xinda"), ("正元", "zhengyuan"), ("百川", "baichuan"),
    ("盛世", "shengshi"), ("精工", "jinggong"), ("联创", "lianchuang"), ("万象", "wanxiang"),
    ("泰和", "taihe"), ("华腾", "huateng"), ("思源", "siyuan"), ("同创", "tongchuang"), ("和光", "heguang"),
    ("德润", "derun"), ("康泽", "kangze"), ("仁和", "renhe"), ("益丰", "yifeng"), ("长青", "changqing"),
    ("青禾", "qinghe"), ("蓝海", "lanhai"), ("朗润", "langrun"), ("恒信", "hengxin"), ("天工", "tiangong"),
    ("凯达", "kaida"), ("方圆", "fangyuan"), ("中恒", "zhongheng"), ("优品", "youpin"), ("惠民", "huimin"),
    ("鑫源", "xinyuan"), ("宇航", "yuhang"), ("凌云", "lingyun"), ("九州", "jiuzhou"), ("华光", "huaguang"),
    ("致远", "zhiyuan"), ("协力", "xieli"), ("弘毅", "hongyi"),
]  # fmt: skip

# industry → [(word in the company name, domain suffix)]: the name says what the company does.
INDUSTRIES: dict[str, list[tuple[str, str]]] = {
    "新能源车企": [("新能源汽车", "ev"), ("汽车科技", "auto"), ("动力电池", "battery")],
    "医疗器械": [("医疗器械", "med"), ("医疗科技", "medtech"), ("医学影像", "imaging")],
    "教育培训": [("教育科技", "edu"), ("职业培训", "training"), ("文化传播", "culture")],
    "工业设备": [("机械设备", "machinery"), ("智能装备", "equip"), ("自动化", "automation")],
    "财税SaaS": [("财税服务", "tax"), ("软件", "soft"), ("信息技术", "it")],
    "跨境电商": [("电子商务", "ecom"), ("国际贸易", "trade"), ("供应链管理", "scm")],
    "连锁零售": [("商贸", "retail"), ("连锁超市", "mart"), ("餐饮管理", "food")],
    "生物医药": [("生物医药", "bio"), ("制药", "pharma"), ("生物科技", "biotech")],
}
INDUSTRY_NAMES: list[str] = list(INDUSTRIES)
INDUSTRY_CUM_WEIGHTS: list[float] = list(accumulate([14, 12, 10, 16, 12, 12, 12, 12]))

TITLES: list[str] = [
    "总经理", "副总经理", "采购经理", "IT负责人", "财务总监", "运营总监", "技术总监", "创始人",
    "市场经理", "销售总监", "行政主管", "信息中心主任",
]  # fmt: skip

# What the lead is about: the demo organisation sells B2B software and services.
DEAL_ITEMS: list[str] = [
    "年度订阅", "私有化部署", "席位扩容", "试点项目", "系统集成", "数据迁移", "定制开发", "续约",
]  # fmt: skip

DOUYIN_THEMES: list[str] = ["信息流表单", "直播获客", "行业白皮书下载", "短视频线索", "同城推广"]
WEB_FORM_CAMPAIGNS: list[str] = ["", "", "官网-免费试用", "官网-预约演示", "官网-价格咨询"]
TRADE_SHOWS: list[str] = ["上海工博会", "深圳高交会", "广州广交会", "北京科博会", "杭州云栖大会"]

# Why a lead was lost, per stage index of the default pipeline (later stages: more competition).
LOST_REASONS_BY_STAGE: list[list[str]] = [
    ["联系不上", "需求不匹配", "无决策权", "预算不足"],
    ["预算不足", "无决策权", "项目取消", "需求不匹配"],
    ["选择竞品", "预算不足", "项目取消", "无决策权"],
    ["选择竞品", "预算不足", "项目取消", "价格未谈拢"],
]
POOL_LOST_REASONS: list[str] = ["联系不上", "无效线索", "重复咨询"]
BACKWARD_NOTES: list[str] = [
    "客户需求变化，需重新确认",
    "新决策人加入，需重新演示方案",
    "客户要求调整方案后再报价",
    "预算审批被退回，重新梳理需求",
]
