"""Where jobs run: the launchers, and the backends that answer for their jobs afterwards.

Importing the folder loads the backends (backend.py), so that a job run by any launcher here can
ask a scheduler whether the owner of its directory on another host ended (sweeper/job/owner.py).
"""
from sweeper.launching import backend as backend
