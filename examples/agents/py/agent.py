"""An agent that asks ackd before it acts (Python, the `mcp` package + the standard ssl module).

    request_authorization -> check_authorization (wait_seconds) until decided -> save the SVID
    (svid.pem: certificate chain, svid.key: private key, both mode 0600) -> call the protected
    resource over mutual TLS -> revoke_authorization.

    python3 -m pip install mcp        # once
    python3 examples/agents/py/agent.py

Next to `npm start` it needs nothing else (it reads .ackd/local.json). Settings (environment):
    ACKD_MCP_URL       the MCP endpoint                       (local.json mcpUrl)
    ACKD_API_KEY       the agent's API key                    (local.json agentApiKey)
    ACKD_AGENT_ID      the agent the key belongs to           (local.json agentId)
    ACKD_RESOURCE_URL  the protected resource to call         (https://127.0.0.1:8443/rotate)
    ACKD_RESOURCE_CA   the resource's server certificate      (.ackd/protected-resource.crt)
    ACKD_SVID_DIR      where svid.pem and svid.key are saved  (the current directory)
    ACKD_HOME          where local.json is                    (.ackd)
Start the resource first: npm run example:resource -- --permission db:write
"""

import asyncio
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

HOME = Path(os.environ.get("ACKD_HOME", Path.cwd() / ".ackd"))


def _local() -> dict:
    try:
        return json.loads((HOME / "local.json").read_text())
    except (OSError, ValueError):
        return {}


LOCAL = _local()


def setting(env: str, fallback: str | None) -> str:
    value = os.environ.get(env) or fallback
    if not value:
        sys.exit(f"set {env} (or run `npm start`, which writes {HOME / 'local.json'})")
    return value


def _structured(result) -> dict:
    # mcp 2.x names it structured_content (1.x: structuredContent).
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None) or {}


async def call(session: ClientSession, name: str, arguments: dict) -> dict:
    """A tool's structured result; a tool error (is_error) becomes an exception with its text."""
    result = await session.call_tool(name, arguments)
    if getattr(result, "is_error", None) or getattr(result, "isError", None):
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise RuntimeError(f"{name}: {text}")
    return _structured(result)


def call_resource(url: str, context: ssl.SSLContext) -> tuple[int, str]:
    """GET over mutual TLS: the SVID is the client certificate, the resource's own certificate the only trusted CA."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as res:
            return res.status, res.read().decode().strip()
    except urllib.error.HTTPError as refused:  # 401/403 with a JSON reason
        return refused.code, refused.read().decode().strip()


def save_private(path: Path, data: str) -> None:
    """Writes a file only this user can read (0600), also when it existed before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(path, 0o600)


async def main() -> int:
    mcp_url = setting("ACKD_MCP_URL", LOCAL.get("mcpUrl"))
    api_key = setting("ACKD_API_KEY", LOCAL.get("agentApiKey"))
    agent_id = setting("ACKD_AGENT_ID", LOCAL.get("agentId"))
    resource_url = setting("ACKD_RESOURCE_URL", "https://127.0.0.1:8443/rotate")
    resource_ca = setting("ACKD_RESOURCE_CA", str(HOME / "protected-resource.crt"))
    svid_dir = Path(os.environ.get("ACKD_SVID_DIR", ".")).resolve()

    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"}))
        streams = await stack.enter_async_context(streamable_http_client(mcp_url, http_client=http))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()

        # 1. Ask. The approver sees exactly these fields.
        asked = await call(session, "request_authorization", {
            "agent_id": agent_id,
            "action": "rotate the db password",
            "permissions": ["db:write"],
            "justification": "Quarterly rotation of the orders database password.",
            "ttl_minutes": 10,
        })
        request_id = asked["request_id"]
        print(f"requested {request_id}", flush=True)
        print(f"waiting for a human: {asked['consent_url']}", flush=True)

        # 2. Wait for the decision: each check holds up to 25 s while the request is pending.
        while True:
            result = await call(session, "check_authorization", {"request_id": request_id, "wait_seconds": 25})
            if result["status"] != "pending":
                break
            if "approvals" in result:
                print(f"still pending ({result['approvals']['have']} of {result['approvals']['need']} approvals)", flush=True)
        if result["status"] != "approved":
            print(f"not authorized: {result['status']}; doing nothing", flush=True)
            return 1
        if not result.get("svid"):
            # The SVID is sent once, to the first check after approval; it is never stored by ackd.
            raise RuntimeError("approved, but the SVID was already delivered to an earlier check")
        print(f"approved: {result['spiffe_id']} (svid_id {result['svid_id']}, until {result['expires_at']})", flush=True)

        # 3. Keep the SVID: the chain (leaf first) and the private key, readable by this user only.
        pem = result["svid"]
        at = pem.index("-----BEGIN PRIVATE KEY-----")
        cert_path, key_path = svid_dir / "svid.pem", svid_dir / "svid.key"
        save_private(cert_path, pem[:at])
        save_private(key_path, pem[at:])
        print(f"saved {cert_path} and {key_path} (mode 600)", flush=True)

        # 4. Act: the resource verifies the SVID (chain, trust domain, revocation, permissions).
        context = ssl.create_default_context(cafile=resource_ca)
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
        url = f"{resource_url}?{urllib.parse.urlencode({'request_id': request_id})}"
        status, body = await asyncio.to_thread(call_resource, url, context)
        print(f"resource answered {status}: {body}", flush=True)

        # 5. Done: give the identity back. The resource refuses it from now on.
        revoked = await call(session, "revoke_authorization", {"request_id": request_id, "svid_id": result["svid_id"]})
        print(f"revoked at {revoked['revoked_at']}", flush=True)
        after_status, after_body = await asyncio.to_thread(call_resource, url, context)
        print(f"after revocation the resource answered {after_status}: {after_body}", flush=True)
        return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
