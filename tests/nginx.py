"""The shipped nginx configuration (deploy/nginx/cmdcenter.conf) run by a test: a throwaway CA and
server certificate, the config's ports and paths swapped for free ones, `nginx -g 'daemon off;'`
under a prefix of its own."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests import servers

SITE = servers.ROOT / "deploy" / "nginx" / "cmdcenter.conf"


def make_ca_and_cert(folder: Path, host: str = "localhost") -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed (SAN: `host`, 127.0.0.1); returns (ca, crt, key)
    paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cmdcenter test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.crt", folder / "server.crt", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def render_site(text: str, *, backends: list[int], https_port: int, http_port: int, crt: Path,
                key: Path, log_dir: Path) -> str:
    """The shipped site config with its example processes (127.0.0.1:8050, :8051), ports,
    certificate and log paths replaced; IPv6 listeners dropped (the test binds 127.0.0.1)."""
    for i, port in enumerate(backends):
        assert f"127.0.0.1:{8050 + i}" in text, f"the shipped config has no process {i}"
        text = text.replace(f"127.0.0.1:{8050 + i}", f"127.0.0.1:{port}")
    text = re.sub(r"^\s*listen \[::\]:\d+.*\n", "", text, flags=re.M)
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("/etc/cmdcenter/tls/server.crt", str(crt))
    text = text.replace("/etc/cmdcenter/tls/server.key", str(key))
    text = text.replace("/var/log/nginx/", f"{log_dir}/")
    return text


class Nginx:
    """nginx in the foreground with the shipped site config, on free ports."""

    def __init__(self, backends: list[int], *, connections: int = 4096,
                 workers: str = "1") -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (make test installs it)")
        # workers run as an unprivileged user when nginx starts as root: a folder they can use
        self.dir = Path(tempfile.mkdtemp(prefix="cmdcenter-nginx-"))
        self.dir.chmod(0o755)
        for sub in ("tmp", "logs"):
            (self.dir / sub).mkdir()
            (self.dir / sub).chmod(0o777)
        self.ca, crt, key = make_ca_and_cert(self.dir / "tls")
        self.https_port, self.http_port = servers.free_port(), servers.free_port()
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        files = connections * 2 if hard == resource.RLIM_INFINITY else min(connections * 2, hard)
        site = render_site(SITE.read_text(), backends=backends, https_port=self.https_port,
                           http_port=self.http_port, crt=crt, key=key,
                           log_dir=self.dir / "logs")
        (self.dir / "cmdcenter.conf").write_text(site)
        temp = self.dir / "tmp"
        (self.dir / "nginx.conf").write_text(f"""
worker_processes {workers};
worker_rlimit_nofile {files};
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log {self.dir}/logs/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {self.dir}/cmdcenter.conf;
}}
""")
        check = subprocess.run([binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                                "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the config:\n{check.stderr}")
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g",
             "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        servers.wait_port(self.https_port, 20, self.proc)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    def error_log(self) -> str:
        path = self.dir / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> str:
        path = self.dir / "logs" / "cmdcenter.access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free right now."""
    import socket

    for _ in range(50):
        port = servers.free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def env_without_cmdcenter() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("CMDCENTER_")}
