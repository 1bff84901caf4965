"""The relay behind Dovecot's submission service in the tests: accepts every message and appends
it to a file. Usage: smtp_sink.py PORT FILE. (Python 3.11's smtpd; a real MTA is not the subject
of these tests: the front door and Dovecot are.)"""

import asyncore
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import smtpd  # noqa: E402


class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        with open(sys.argv[2], "ab") as file:
            file.write(data if isinstance(data, bytes) else data.encode())
            file.write(b"\n.\n")


Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
asyncore.loop()
