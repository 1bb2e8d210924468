"""HTTPS webhooks: the request goes to the checked address, with the host name in SNI, `Host` and the
certificate check, against a TLS receiver on loopback whose certificates the test makes."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook

from notifications.models import WebhookDelivery
from notifications.services import notify
from notifications.tests.receiver import Receiver
from notifications.webhooks import create_subscription, send_webhook_delivery

pytestmark = pytest.mark.django_db


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificates(directory, dns_name):
    """A CA (written as the bundle) and a server certificate it signed for `dns_name`."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Test CA"))
        .issuer_name(_name("Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    bundle, chain, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(bundle), (str(chain), str(key_file))


@pytest.fixture
def tls_receiver(settings, tmp_path, request):
    """An HTTPS receiver reached as https://localhost:<port>/ with a certificate for `request.param`."""
    bundle, tls = _certificates(tmp_path, request.param)
    settings.WEBHOOK_CA_BUNDLE = bundle
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    peer = Receiver(tls=tls, host="localhost")
    yield peer
    peer.close()


def _delivery(staff, user, url):
    subscription, secret = create_subscription(
        owner=staff, organization_id=None, url=url, kinds=["health_alert_critical"]
    )
    notify("health_alert_critical", patient=user, scope="metrics", payload={"alert_id": "a1"}, dedupe_key="a1")
    return WebhookDelivery.objects.get(subscription=subscription), secret


@pytest.mark.parametrize("tls_receiver", ["localhost"], indirect=True)
def test_https_is_sent_to_the_checked_address_with_the_host_name_verified(staff, user, tls_receiver):
    delivery, secret = _delivery(staff, user, tls_receiver.url)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "sent"

    (request,) = tls_receiver.requests
    port = tls_receiver.server.server_address[1]
    assert request["headers"]["host"] == f"localhost:{port}"
    assert Webhook(secret).verify(request["body"], request["headers"])["data"]["alert_id"] == "a1"


@pytest.mark.parametrize("tls_receiver", ["partner.example.org"], indirect=True)
def test_a_certificate_for_another_name_is_refused_and_tried_again_later(staff, user, tls_receiver):
    delivery, _ = _delivery(staff, user, tls_receiver.url)

    assert send_webhook_delivery(delivery_id=delivery.pk) == "queued"

    assert tls_receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.last_error == "SSLError: hostname 'localhost' doesn't match 'partner.example.org'"
