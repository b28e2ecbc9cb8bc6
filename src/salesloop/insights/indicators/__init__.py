"""Leading indicators (SPEC C9): conversion, stage stall index and customer response rate, per
region, team and rep, daily and weekly, with their inputs, warning rules and the hand-off to alerts.
See docs/indicators.md for the cohorts, the worked example and the "sharp drop" rule."""
