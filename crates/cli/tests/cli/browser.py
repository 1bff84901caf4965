"""A person's browser in the tests, as `$BROWSER` for `letterlock login`: it opens the page it is
given, signs in, approves, and follows the redirect back to the client's loopback listener.
Also handles the device grant's verification page (`/device?user_code=…`).

Usage: browser.py URL. The person is LETTERLOCK_TEST_USER with LETTERLOCK_TEST_PASSWORD; with
LETTERLOCK_TEST_DECISION=deny it declines. Each page it opened ("open URL") and how
the consent page named the application ("consent verified" or "consent unverified") are appended
to LETTERLOCK_TEST_BROWSER_LOG, if set, so a test can see what the client asked for.
"""

import html.parser
import os
import sys
import urllib.parse

import requests


class Fields(html.parser.HTMLParser):
    """Collects the name/value pairs of <input> elements."""

    def __init__(self):
        super().__init__()
        self.values = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and "name" in attrs:
            self.values[attrs["name"]] = attrs.get("value", "")


def fields(page):
    parser = Fields()
    parser.feed(page)
    return parser.values


def log(line):
    path = os.environ.get("LETTERLOCK_TEST_BROWSER_LOG")
    if path:
        with open(path, "a") as file:
            file.write(line + "\n")


def sign_in_and_decide(session, url, address, password, decision="approve", device_name="Test browser"):
    """Opens `url` (an authorization or device verification URL), signs in and decides. Returns
    the redirect location for the code flow, or None for the device grant."""
    split = urllib.parse.urlsplit(url)
    base = f"{split.scheme}://{split.netloc}"
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text
    hidden = fields(page.text)
    # Every field of the form, as a browser sends it (the sign-in token among them).
    form = dict(hidden, address=address, password=password)
    page = session.post(f"{base}/login", data=form, timeout=10)
    assert "Allow access" in page.text, page.text
    log("consent verified" if '<p class="verified">' in page.text else "consent unverified")
    consent = fields(page.text)
    device = "user_code" in hidden
    answer = session.post(
        f"{base}/device/consent" if device else f"{base}/consent",
        data={
            "request": consent["request"],
            "csrf": consent["csrf"],
            "device_name": device_name,
            "decision": decision,
        },
        allow_redirects=False,
        timeout=10,
    )
    if device:
        assert answer.status_code == 200, answer.text
        return None
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"]


def main(url):
    log(f"open {url}")
    session = requests.Session()
    location = sign_in_and_decide(
        session,
        url,
        os.environ["LETTERLOCK_TEST_USER"],
        os.environ["LETTERLOCK_TEST_PASSWORD"],
        os.environ.get("LETTERLOCK_TEST_DECISION", "approve"),
    )
    if location:
        # The redirect goes to the client's loopback listener, as a browser would follow it.
        requests.get(location, timeout=10)


if __name__ == "__main__":
    main(sys.argv[1])
