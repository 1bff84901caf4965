"""Clients we did not write, through the DAV front door. Usage: dav_client.py SCENARIO JSON
Prints one JSON object with what it saw.

- caldav: the `caldav` library (PyPI) finds the principal, makes a calendar, saves an event and
  reads it back, with a bearer token;
- dpop: `requests` with DPoP proofs (RFC 9449 §7) made by Authlib's JOSE: a good proof, the same
  proof again, a proof for another URL, and the bound token sent as a bearer token.
"""

import json
import warnings
import sys

import requests

warnings.simplefilter("ignore")
from authlib.jose import JsonWebKey

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from authlib_flow import dpop_proof  # noqa: E402

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Letterlock tests//EN
BEGIN:VEVENT
UID:letterlock-test-1@example.com
DTSTAMP:20261124T120000Z
DTSTART:20261201T090000Z
DTEND:20261201T100000Z
SUMMARY:Planning through the front door
END:VEVENT
END:VCALENDAR
"""


def caldav_scenario(p):
    import caldav

    client = caldav.DAVClient(url=p["url"], headers={"Authorization": f"Bearer {p['token']}"})
    principal = client.principal()
    calendar = principal.make_calendar(name="Calendar", cal_id="calendar")
    calendar.save_event(EVENT)
    again = caldav.DAVClient(url=p["url"], headers={"Authorization": f"Bearer {p['token']}"})
    calendars = again.principal().calendars()
    events = [str(event.icalendar_component["SUMMARY"]) for c in calendars for event in c.events()]
    return {
        "principal": str(principal.url),
        "calendar": str(calendar.url),
        "calendars": [str(c.url) for c in calendars],
        "events": events,
    }


def dpop_scenario(p):
    key = JsonWebKey.import_key(p["key"])
    url, token = p["url"], p["token"]
    seen = {}

    def propfind(proof, scheme="DPoP", target=url):
        headers = {"Authorization": f"{scheme} {token}", "Depth": "0"}
        if proof:
            headers["DPoP"] = proof
        response = requests.request("PROPFIND", target, headers=headers, timeout=10)
        return [response.status_code, response.headers.get_all("WWW-Authenticate") if hasattr(response.headers, "get_all") else response.headers.get("WWW-Authenticate", "")]

    proof = dpop_proof(key, "PROPFIND", url, token)
    seen["good"] = propfind(proof)
    seen["replayed"] = propfind(proof)
    seen["other_url"] = propfind(dpop_proof(key, "PROPFIND", url + "elsewhere/", token))
    seen["other_token"] = propfind(dpop_proof(key, "PROPFIND", url, token + "x"))
    other_key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    seen["other_key"] = propfind(dpop_proof(other_key, "PROPFIND", url, token))
    seen["no_proof"] = propfind(None)
    seen["as_bearer"] = propfind(None, scheme="Bearer")
    return seen


if __name__ == "__main__":
    scenario, parameters = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"caldav": caldav_scenario, "dpop": dpop_scenario}[scenario](parameters)))
