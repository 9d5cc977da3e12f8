"""Tasks: one module per task, each with `run(*, optimizer, job_dir, ...) -> Outcome`.

The keyword arguments besides `optimizer` (the Keras optimizer's config) and `job_dir` are the
task node of conf/task/<name>.yaml, resolved; a task that can be pruned also takes `trial` (a
search's trial reporter, passed only under a search with a pruner).
"""
