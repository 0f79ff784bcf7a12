"""Run reports: the results table, figures and RUN/report.md."""
