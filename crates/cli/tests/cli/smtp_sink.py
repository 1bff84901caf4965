"""The relay behind Dovecot's submission service in the tests: accepts every message and appends
it to a file, and with an LMTP port also delivers it to Dovecot's mailboxes (so that a message
sent through the SMTP front door can be read back through the IMAP one).
Usage: smtp_sink.py PORT FILE [LMTP_PORT]. (Python 3.11's smtpd; a real MTA is not the subject
of these tests: the front door and Dovecot are.)"""

import asyncore
import smtplib
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import smtpd  # noqa: E402


class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        with open(sys.argv[2], "ab") as file:
            file.write(data if isinstance(data, bytes) else data.encode())
            file.write(b"\n.\n")
        if len(sys.argv) > 3:
            with smtplib.LMTP("127.0.0.1", int(sys.argv[3])) as lmtp:
                lmtp.sendmail(mailfrom, rcpttos, data)


Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
asyncore.loop()
