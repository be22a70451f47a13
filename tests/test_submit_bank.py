"""The bank of real submit descriptions, each checked against HTCondor's own submit.

tests/submit_bank/ holds descriptions from the HTCondor manual, HTCondor-CE, AliEn,
JAliEn, dask-jobqueue, Parsl, law and TARDIS, and the edge cases of issue 22 (with
the files they include, read items from, or match). Each is expanded by our
condor_submit's parser and by htcondor==24.0.24 (tests/submit_oracle.py) from a
copy of the bank directory, and the job ads must agree attribute by attribute.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from submit_oracle import differences, oracle_ads, our_ads

# HTCondor's submit runs in a child interpreter (and the bank makes a proxy with
# openssl): the e2e tier.
pytestmark = pytest.mark.e2e

BANK = pathlib.Path(__file__).parent / "submit_bank"
DESCRIPTIONS = sorted(p.name for p in BANK.glob("*.sub"))
ENVIRON = {"PATH": "/usr/bin:/bin", "HOME": "/home/tester", "LANG": "C"}


def environ(bank_dir: str) -> dict:
    """The submitting environment; HTCondor reads the proxy use_x509userproxy names."""
    return dict(ENVIRON, X509_USER_PROXY=os.path.join(bank_dir, "x509up"))


def test_the_bank_holds_at_least_sixty_descriptions():
    assert len(DESCRIPTIONS) >= 60


@pytest.fixture(scope="module")
def bank_copy(tmp_path_factory):
    where = tmp_path_factory.mktemp("bank") / "submit"
    shutil.copytree(BANK, where)
    make_proxy(str(where / "x509up"))
    return str(where)


def make_proxy(path: str) -> None:
    """A self-signed certificate and key where HTCondor reads an X.509 proxy: it opens the
    file that use_x509userproxy and x509userproxy name."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=tester", "-keyout", path + ".key", "-out", path + ".pem"],
                   check=True, capture_output=True, timeout=60)
    with open(path, "wb") as proxy:
        for part in (path + ".pem", path + ".key"):
            with open(part, "rb") as handle:
                proxy.write(handle.read())
    os.chmod(path, 0o600)


@pytest.mark.parametrize("name", DESCRIPTIONS)
def test_job_ads_agree_with_htcondor(name, bank_copy):
    text = (pathlib.Path(bank_copy) / name).read_text()
    theirs = oracle_ads(text, bank_copy, environ(bank_copy))
    ours = our_ads(text, bank_copy, environ(bank_copy))
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs):
        assert differences(mine, other) == [], name
