"""The checkout's entry point: `python run.py [-m] [group=option] [key=value ...]` is the installed
`hpc-sweeper ...` (sweeper/run.py; see README)."""
from sweeper.run import main

if __name__ == "__main__":
    main()
