"""Routing pages (SPEC C8): the versions of the rules, one version's rules in words with its editor,
the sandbox's fairness reports, and a lead's assignments ("为什么分给我").

Views are thin (STYLE.md 2): parse, check the role, call the service or selector the REST API
(`routing.api`, `routing.sandbox_api`) calls — so page and API cannot disagree — and shape the
result for the template. Who sees what:

- everyone signed in reads the version in force, the scheduled and the past versions (C8 "rules
  you can read") and, on a lead they see, why it went to its owner;
- managers, directors, product managers and admins also see the policy, the A/B tests and the
  sandbox's reports (a rep asking for one gets 404, as for anything out of scope);
- directors and admins draft, simulate, publish and cancel; admins roll back — the services
  refuse anyone else (403), and the pages show nobody a button that would be refused.
"""
