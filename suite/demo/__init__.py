"""
Narrated demos: ``python -m suite.demo [--lang en|zh] NAME`` starts netsuite
servers and clients in one process, on 127.0.0.1, tells what happens, and
ends by itself.  The narration is in English or Chinese (``--lang``, or the
locale: ``LANG=zh_CN.UTF-8``); its text lives in :mod:`suite.demo.lang`.
"""

#: The demos, in the order they are listed.
DEMOS = ("echo", "chat", "upload")
