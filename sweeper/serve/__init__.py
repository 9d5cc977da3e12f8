"""`python -m sweeper serve DIR`: a live, read-only page for a sweep (docs/watching.md).

live.py reads the sweep (the one reader, sweeper/sweep/jobs.py, and collate's table) at most once
per interval and answers the page's questions from that snapshot; app.py is the web application
(Starlette, served by uvicorn) with its token and its path checks; static/ holds the page.
"""
