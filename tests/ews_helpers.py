"""Shared pieces of the EWS tests (tests/test_ews*.py): a server with
alice and bob, exchangelib accounts set up through SOAP Autodiscover,
raw SOAP requests.

exchangelib resolves the host names it is given; the server calls itself
mail.example.test, so `resolve_locally` maps that name to 127.0.0.1
in-process, and nothing leaves loopback."""

import socket

import pytest
import requests

from conftest import PASSWORD, Server

S = "{http://schemas.xmlsoap.org/soap/envelope/}"
M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
E = "{http://schemas.microsoft.com/exchange/services/2006/errors}"


@pytest.fixture
def web(tmp_path):
    s = Server(tmp_path, listeners=["http", "https", "smtp", "submission", "imaps", "managesieve"])
    try:
        s.start()
        s.add_user("alice@example.test", name="Alice A")
        s.add_user("bob@example.test", name="Bob B")
    except BaseException:
        s.close()
        raise
    yield s
    s.close()


@pytest.fixture
def resolve_locally(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith("example.test"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.fixture
def no_verify():
    from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter
    saved = BaseProtocol.HTTP_ADAPTER_CLS
    BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter
    yield
    BaseProtocol.HTTP_ADAPTER_CLS = saved


def ews_url(web):
    return f"https://127.0.0.1:{web.port('https')}/EWS/Exchange.asmx"


def account(web, user="alice@example.test"):
    """An exchangelib Account the way a script sets one up: SOAP
    Autodiscover for the EWS URL and version, then EWS itself."""
    from exchangelib import DELEGATE, Account, Configuration, Credentials
    from exchangelib.autodiscover.protocol import AutodiscoverProtocol

    creds = Credentials(user, PASSWORD)
    ad = AutodiscoverProtocol(config=Configuration(
        service_endpoint=f"https://127.0.0.1:{web.port('https')}/autodiscover/autodiscover.svc",
        credentials=creds))
    settings = ad.get_user_settings(user=user)
    settings.raise_errors()
    config = Configuration(service_endpoint=settings.ews_url, credentials=creds)
    return Account(primary_smtp_address=user, config=config, autodiscover=False, access_type=DELEGATE)


def soap(body, header='<t:RequestServerVersion Version="Exchange2016"/>'):
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>")


def post(web, data, auth=("alice@example.test", PASSWORD)):
    return requests.post(ews_url(web), data=data, auth=auth, verify=False, timeout=20,
                         headers={"Content-Type": "text/xml; charset=utf-8"})


