"""Drives Debian's Thunderbird, headless, through Marionette (its remote protocol) for the
Thunderbird test (tests/cli/thunderbird.rs).

It makes a fresh profile: one account from prefs (IMAP through the IMAP door, SMTP through the
SMTP door, authMethod 10 = OAuth2), an unsigned add-on whose manifest registers Letterlock as an
`oauth_provider` with a public client id, and the external-browser mode, with a desktop handler
for http(s) URLs (`open-url` beside this file) that "plays the person" in Chromium
(tests/browser/person.mjs). Then, in Thunderbird's chrome context: the certificate exception for
the doors' self-signed certificate, `verifyLogon` on the IMAP server (Thunderbird's own PKCE flow
runs here), and a message sent with the outgoing server's `sendMailMessage`.

Usage: driver.py PARAMETERS_JSON. Prints one JSON object with what happened; the logs
(Thunderbird's console, its MOZ_LOG file, the person's log) are in the work folder the parameters
name. Thunderbird, and the person's browser if still running, are stopped at the end, always.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
THUNDERBIRD = "/usr/lib/thunderbird/thunderbird"
ADDON_ID = "letterlock-test@example.com"
SMTP_KEY = "smtp1"


class MarionetteError(RuntimeError):
    """An error answer; `error` is Marionette's object (`error`, `message`, `data`)."""

    def __init__(self, command, error):
        super().__init__(f"{command}: {error}")
        self.error = error


class Marionette:
    """A minimal client of Marionette's protocol 3: `LENGTH:JSON` messages, commands
    `[0, id, name, parameters]`, answers `[1, id, error, result]`."""

    def __init__(self, port, deadline):
        while True:
            try:
                self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("Thunderbird's Marionette port never opened")
                time.sleep(0.2)
        self.socket.settimeout(None)
        self.buffer = b""
        self.next_id = 0
        hello = self.receive()
        if hello.get("marionetteProtocol") != 3:
            raise RuntimeError(f"unexpected Marionette greeting {hello}")

    def receive(self):
        while b":" not in self.buffer:
            self.fill()
        length, rest = self.buffer.split(b":", 1)
        length = int(length)
        while len(rest) < length:
            self.buffer = rest
            self.fill()
            rest = self.buffer
        self.buffer = rest[length:]
        return json.loads(rest[:length])

    def fill(self):
        chunk = self.socket.recv(65536)
        if not chunk:
            raise RuntimeError("Marionette closed the connection")
        self.buffer += chunk

    def command(self, name, parameters, timeout):
        self.next_id += 1
        body = json.dumps([0, self.next_id, name, parameters]).encode()
        self.socket.sendall(str(len(body)).encode() + b":" + body)
        self.socket.settimeout(timeout)
        try:
            while True:
                answer = self.receive()
                if answer[0] == 1 and answer[1] == self.next_id:
                    break
        finally:
            self.socket.settimeout(None)
        if answer[2]:
            raise MarionetteError(name, answer[2])
        return answer[3]

    def run(self, script, args, timeout):
        """Runs an async chrome script (its last argument is the callback) for at most
        `timeout` seconds."""
        self.command("WebDriver:SetTimeouts", {"script": int(timeout * 1000)}, 10)
        result = self.command(
            "WebDriver:ExecuteAsyncScript", {"script": script, "args": args}, timeout + 10
        )
        return result["value"]


def user_prefs(parameters, marionette_port):
    host = "127.0.0.1"
    user = parameters["user"]
    prefs = {
        # Marionette, and a quiet start.
        "marionette.port": marionette_port,
        "mail.shell.checkDefaultClient": False,
        "mail.provider.suppress_dialog_on_startup": True,
        "mailnews.start_page.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "app.update.disabledForTesting": True,
        "mail.rights.version": 1,
        "mail.spotlight.firstRunDone": True,
        "mail.biff.play_sound": False,
        "mail.biff.show_alert": False,
        "mail.startup.enabledMailCheckOnce": True,
        "mail.server.default.check_new_mail": False,
        "mail.server.default.login_at_startup": False,
        # The unsigned add-on side-loaded in the profile.
        "extensions.autoDisableScopes": 0,
        "xpinstall.signatures.required": False,
        # The external browser: the desktop's http handler (GIO), not a Thunderbird tab.
        "mailnews.oauth.useExternalBrowser": True,
        # Thunderbird's own logs: the chrome console on stdout.
        "devtools.console.stdout.chrome": True,
        "mailnews.oauth.loglevel": "All",
        "mailnews.smtp.loglevel": "All",
        # The account.
        "mail.accountmanager.accounts": "account1",
        "mail.accountmanager.defaultaccount": "account1",
        "mail.account.account1.server": "server1",
        "mail.account.account1.identities": "id1",
        "mail.identity.id1.useremail": user,
        "mail.identity.id1.fullName": "Fay",
        "mail.identity.id1.smtpServer": SMTP_KEY,
        "mail.identity.id1.valid": True,
        "mail.server.server1.type": "imap",
        "mail.server.server1.hostname": host,
        "mail.server.server1.port": parameters["imap_port"],
        "mail.server.server1.socketType": parameters["socket_type"],
        "mail.server.server1.authMethod": 10,
        "mail.server.server1.userName": user,
        "mail.server.server1.name": "Letterlock test",
        "mail.smtpservers": SMTP_KEY,
        "mail.smtp.defaultserver": SMTP_KEY,
        f"mail.smtpserver.{SMTP_KEY}.type": "smtp",
        f"mail.smtpserver.{SMTP_KEY}.hostname": host,
        f"mail.smtpserver.{SMTP_KEY}.port": parameters["smtp_port"],
        f"mail.smtpserver.{SMTP_KEY}.try_ssl": parameters["socket_type"],
        f"mail.smtpserver.{SMTP_KEY}.authMethod": 10,
        f"mail.smtpserver.{SMTP_KEY}.username": user,
    }
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())


def manifest(parameters):
    """The add-on an operator ships (docs/clients/thunderbird.md shows the same)."""
    issuer = parameters["issuer"]
    return {
        "manifest_version": 2,
        "name": "Letterlock test sign-in",
        "version": "1.0",
        "browser_specific_settings": {"gecko": {"id": ADDON_ID, "strict_min_version": "153.0"}},
        "oauth_provider": {
            "issuer": "127.0.0.1",
            "issuerIdentifier": issuer,
            "clientId": parameters["client_id"],
            "authorizationEndpoint": f"{issuer}/authorize",
            "tokenEndpoint": f"{issuer}/token",
            "redirectionEndpoint": parameters["redirection_endpoint"],
            "usePKCE": True,
            "useExternalBrowser": True,
            "hostnames": ["127.0.0.1"],
            "scopes": "urn:ietf:params:oauth:scope:mail offline_access",
        },
    }


def make_profile(parameters, work, marionette_port):
    profile = os.path.join(work, "profile")
    os.makedirs(os.path.join(profile, "extensions"), exist_ok=True)
    with open(os.path.join(profile, "user.js"), "w") as file:
        file.write(user_prefs(parameters, marionette_port))
    with zipfile.ZipFile(os.path.join(profile, "extensions", f"{ADDON_ID}.xpi"), "w") as xpi:
        xpi.writestr("manifest.json", json.dumps(manifest(parameters), indent=2))
    # The desktop: Thunderbird opens http(s) URLs with GIO's default handler for the scheme.
    applications = os.path.join(work, "data", "applications")
    config = os.path.join(work, "config")
    os.makedirs(applications, exist_ok=True)
    os.makedirs(config, exist_ok=True)
    os.makedirs(os.path.join(work, "home"), exist_ok=True)
    os.makedirs(os.path.join(work, "cache"), exist_ok=True)
    with open(os.path.join(applications, "letterlock-person.desktop"), "w") as file:
        file.write(
            "[Desktop Entry]\nType=Application\nName=The person's browser\n"
            f"Exec={os.path.join(HERE, 'open-url')} %u\n"
            "MimeType=x-scheme-handler/http;x-scheme-handler/https;\nNoDisplay=true\n"
        )
    with open(os.path.join(config, "mimeapps.list"), "w") as file:
        file.write(
            "[Default Applications]\nx-scheme-handler/http=letterlock-person.desktop\n"
            "x-scheme-handler/https=letterlock-person.desktop\n"
        )
    return profile


CERTIFICATE_EXCEPTION = """
const [host, ports, der, done] = arguments;
const certificates = Cc["@mozilla.org/security/x509certdb;1"].getService(Ci.nsIX509CertDB);
const overrides = Cc["@mozilla.org/security/certoverride;1"].getService(Ci.nsICertOverrideService);
const certificate = certificates.constructX509FromBase64(der);
for (const port of ports) {
  overrides.rememberValidityOverride(host, port, {}, certificate, false);
}
done(true);
"""

PROVIDER = """
const [host, done] = arguments;
const { OAuth2Providers } = ChromeUtils.importESModule("resource:///modules/OAuth2Providers.sys.mjs");
const started = Date.now();
(function poll() {
  const details = OAuth2Providers.getHostnameDetails(host, "imap");
  if (details || Date.now() - started > 20000) {
    done(details ? { issuer: details.issuer, scopes: details.requiredScopes } : null);
  } else {
    setTimeout(poll, 100);
  }
})();
"""

VERIFY_IMAP = """
const [done] = arguments;
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const server = MailServices.accounts.getIncomingServer("server1");
const window = Services.wm.getMostRecentWindow("mail:3pane");
server.verifyLogon({
  QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
  OnStartRunningUrl() {},
  OnStopRunningUrl(url, status) {
    done({ status, errorMessage: url?.QueryInterface?.(Ci.nsIMsgMailNewsUrl)?.errorMessage ?? null });
  },
}, window?.msgWindow ?? null);
"""

SEND = """
const [path, address, messageId, done] = arguments;
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const file = Cc["@mozilla.org/file/local;1"].createInstance(Ci.nsIFile);
file.initWithPath(path);
const server = MailServices.outgoingServer.getServerByKey("%s");
const identity = MailServices.accounts.getIdentity("id1");
const to = [MailServices.headerParser.makeMailboxObject("Fay", address)];
// Through XPConnect the call returns nothing; the listener reports the end.
try {
  server.sendMailMessage(file, to, [], identity, address, "", null, false, messageId, {
    QueryInterface: ChromeUtils.generateQI(["nsIMsgOutgoingListener"]),
    onSendStart(request) {},
    onSendStop(serverURI, status, secInfo, errorMessage) {
      const stopped = { status, errorMessage: errorMessage || null };
      // Also kept where a second script finds it: Marionette ends this script early (its
      // answer is null) when Thunderbird opens a prompt, as it does after a refused AUTH.
      Services.prefs.setStringPref("letterlock.test.sendStop", JSON.stringify(stopped));
      done(stopped);
    },
  });
} catch (error) {
  done({ status: null, errorMessage: `sendMailMessage threw: ${error}` });
}
""" % SMTP_KEY


SEND_STOPPED = """
const [done] = arguments;
const started = Date.now();
(function poll() {
  const stopped = Services.prefs.getStringPref("letterlock.test.sendStop", "");
  if (stopped || Date.now() - started > 20000) {
    done(stopped ? { ...JSON.parse(stopped), prompted: true } : null);
  } else {
    setTimeout(poll, 100);
  }
})();
"""


def free_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def stop(process):
    """SIGTERM to the process group, then SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def stop_person(work):
    """The person's browser, if the handler is still running (it writes its pid)."""
    try:
        with open(os.path.join(work, "person.pid")) as file:
            pid = int(file.read().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def person_report(work):
    """The JSON the person's browser printed, or None."""
    try:
        with open(os.path.join(work, "person.log")) as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def main(parameters):
    work = parameters["work"]
    timeout = parameters.get("timeout", 90)
    deadline = time.monotonic() + timeout
    marionette_port = free_port()
    profile = make_profile(parameters, work, marionette_port)
    environment = dict(
        os.environ,
        HOME=os.path.join(work, "home"),
        XDG_DATA_HOME=os.path.join(work, "data"),
        XDG_CONFIG_HOME=os.path.join(work, "config"),
        XDG_CACHE_HOME=os.path.join(work, "cache"),
        XDG_DATA_DIRS="/usr/share",
        MOZ_HEADLESS="1",
        MOZ_CRASHREPORTER_DISABLE="1",
        MOZ_DISABLE_AUTO_SAFE_MODE="1",
        MOZ_LOG="IMAP:5,OAuth2:5",
        MOZ_LOG_FILE=os.path.join(work, "moz.log"),
        LETTERLOCK_TEST_WORK=work,
        LETTERLOCK_TEST_USER=parameters["user"],
        LETTERLOCK_TEST_PASSWORD=parameters["password"],
    )
    environment.pop("DBUS_SESSION_BUS_ADDRESS", None)
    environment.pop("DISPLAY", None)
    environment.pop("WAYLAND_DISPLAY", None)
    seen = {}
    console = open(os.path.join(work, "console.log"), "wb")
    started = time.monotonic()
    thunderbird = subprocess.Popen(
        [THUNDERBIRD, "--headless", "--no-remote", "--profile", profile, "--marionette",
         "--remote-allow-system-access"],
        env=environment,
        stdout=console,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        client = Marionette(marionette_port, deadline)
        client.command("WebDriver:NewSession", {"capabilities": {}}, 30)
        client.command("Marionette:SetContext", {"value": "chrome"}, 10)
        seen["ready_seconds"] = round(time.monotonic() - started, 1)
        # Each step within the time left, and a refused login within a minute (Thunderbird may
        # wait on a prompt nobody answers in headless mode).
        remaining = lambda limit=None: max(5, min(limit or timeout, deadline - time.monotonic()))  # noqa: E731
        if parameters.get("certificate_der"):
            client.run(
                CERTIFICATE_EXCEPTION,
                ["127.0.0.1", [parameters["imap_port"], parameters["smtp_port"]],
                 parameters["certificate_der"]],
                remaining(),
            )
        seen["provider"] = client.run(PROVIDER, ["127.0.0.1"], remaining())
        if not seen["provider"]:
            raise RuntimeError("the add-on's oauth_provider was not registered")
        seen["imap"] = client.run(VERIFY_IMAP, [], remaining(60))
        seen["imap_seconds"] = round(time.monotonic() - started, 1)
        seen["person"] = person_report(work)
        message = os.path.join(work, "message.eml")
        message_id = f"<thunderbird-test-{os.getpid()}@example.com>"
        with open(message, "wb") as file:
            file.write(
                (
                    f"From: Fay <{parameters['user']}>\r\nTo: Fay <{parameters['user']}>\r\n"
                    f"Subject: {parameters['subject']}\r\nMessage-ID: {message_id}\r\n"
                    "Date: Wed, 02 Dec 2026 05:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=UTF-8\r\n\r\n"
                    "Sent by Thunderbird through Letterlock's SMTP door.\r\n"
                ).encode()
            )
        try:
            seen["smtp"] = client.run(SEND, [message, parameters["user"], message_id], remaining(60))
        except MarionetteError as error:
            # Thunderbird asks the person after a refused login ("Login to server ... failed"):
            # Marionette dismisses the prompt and ends the script; the listener still reports.
            if error.error.get("error") != "unexpected alert open":
                raise
            seen["smtp_prompts"] = [error.error.get("data", {}).get("text")]
            seen["smtp"] = None
        # Each prompt ends the script that is running when it opens; ask again, a few times.
        for _ in range(3):
            if seen["smtp"] is not None:
                break
            try:
                seen["smtp"] = client.run(SEND_STOPPED, [], remaining(30))
            except MarionetteError as error:
                if error.error.get("error") != "unexpected alert open":
                    raise
                seen.setdefault("smtp_prompts", []).append(error.error.get("data", {}).get("text"))
        seen["smtp_seconds"] = round(time.monotonic() - started, 1)
        try:
            client.command("Marionette:Quit", {"flags": ["eForceQuit"]}, 10)
        except (RuntimeError, OSError):
            pass
    except Exception as error:  # noqa: BLE001: reported to the test, which prints the logs
        seen["error"] = f"{type(error).__name__}: {error}"
    finally:
        try:
            thunderbird.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        stop(thunderbird)
        stop_person(work)
        console.close()
    seen["person"] = seen.get("person") or person_report(work)
    seen["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(seen))


def terminated(signum, frame):
    # The test's timeout: unwind through `finally`, so Thunderbird is stopped.
    raise SystemExit(f"terminated by signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, terminated)
    main(json.loads(sys.argv[1]))
