"""
Run ``twistd netsuite``'s service from whichever ``suite`` package comes
first on ``sys.path``: the benchmarks start it with ``PYTHONPATH`` set to
an earlier release's source tree, so that release is measured in the same
run as today's (see ``benchmarks/_previous.py``).  Arguments are
``twistd netsuite``'s options; logs go to standard output, as with
``twistd -n``.
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from suite.tap import Options, makeService

options = Options()
options.parseOptions(sys.argv[1:])
globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
service = makeService(options)
service.startService()
reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
reactor.run()
