"""A real SMTP server for the notification tests (tests/src/smtp.rs starts it).

aiosmtpd's own SMTP protocol (Debian's python3-aiosmtpd), served on
127.0.0.1 on a port the OS picks. With --cert/--key it offers STARTTLS and,
as a council relay would, refuses MAIL (and AUTH) before it; without them it
offers no STARTTLS at all, to prove the client never falls back to plaintext.
Each message is written to --out as NNNN.eml, with NNNN.json beside it saying
whether it came over TLS and who logged in. The port is printed on stdout once
the server listens.

Usage: python3 smtp_receiver.py --out DIR [--cert PEM --key PEM] [--user U --password P]
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Keep:
    """Writes each message to the output folder (the name of a temporary
    file, then renamed, so the harness never reads half a message)."""

    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.out, "%04d" % self.count)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": session.auth_data.login.decode() if session.authenticated else None,
        }
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".tmp", base + ".eml")
        return "250 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd answers 535 itself on failure. auth_data is
        # kept on the session, so the message's record names the login.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()
    # aiosmtpd warns of its own deprecated login_data on every AUTH, and logs a
    # traceback for each TLS handshake a test makes fail on purpose; the tests
    # judge by what the client reports and what arrived.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)
    handler = Keep(a.out)
    kwargs = {}
    if a.user:
        kwargs = {"authenticator": authenticator(a.user, a.password), "auth_required": True}

    def protocol():
        return SMTP(
            handler,
            hostname="localhost",
            tls_context=tls,
            require_starttls=tls is not None,
            # AUTH only over TLS (aiosmtpd's default, said here as it matters).
            auth_require_tls=True,
            timeout=30,
            **kwargs,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, host="127.0.0.1", port=0)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Ends when the harness closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
