"""Tasks: one module per task, each with `run(*, optimizer, job_dir, ...) -> Outcome`.

The keyword arguments besides `optimizer` (the Keras optimizer's config) and `job_dir` are the
task node of conf/task/<name>.yaml, resolved. Optional, passed only to a task that takes them:
`trial` (a search's trial reporter, under a search with a pruner) and `progress` (the name of the
job's progress line).
"""
