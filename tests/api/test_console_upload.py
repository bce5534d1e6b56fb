"""The console's upload (issue 12, point 3) over real HTTP against `ecert serve issuer` on a real
chain: a clerk uploads a CSV with two bad rows and gets a job whose progress JSON reaches its
total and whose refused rows download as CSV numbered by DATA row (1 = the first record after
the header line); an auditor is refused, another agency's clerk sees no such job, a POST without
the form's CSRF token or from another origin is refused, and hostile files (not UTF-8, a huge
line, a formula in a header) are refused or neutralised, never a 500."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

import httpx
import pyotp
import pytest
from issuer_server import AGENCY_A, AGENCY_B, TYPE, IssuerHome, IssuerServer
from service_process import ECERT

from registry.certificate.identifiers import id_number_check_char

pytestmark = pytest.mark.chain
PASSWORD = "upload-api-pass-1"


def id_number(serial: int) -> str:
    """A valid 公民身份号码 (杭州市西湖区, born 1960–1969)."""
    body = f"330106196{serial % 10}0{1 + serial % 9}1{serial % 10}{serial % 1000:03d}"
    return body + id_number_check_char(body)


def broken(code: str) -> str:
    """The same code with a wrong check character."""
    return code[:-1] + ("1" if code[-1] != "1" else "2")


@dataclass
class Staff:
    url: str
    username: str
    secret: str

    def client(self) -> httpx.Client:
        """A browser-like client signed in (session cookie), sending this origin."""
        client = httpx.Client(base_url=self.url, timeout=60, headers={"Origin": self.url})
        form = client.get("/console/login")
        done = client.post("/console/login", data={"csrf_token": csrf_of(form.text), "username": self.username,
                                                   "password": PASSWORD, "code": pyotp.TOTP(self.secret).now()})  # fmt: skip
        assert done.status_code == 303, done.text
        return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerServer]:
    home = IssuerHome(tmp_path_factory.mktemp("console-upload"))
    try:
        home.set_up()
        running = IssuerServer(home, "sqlite")
        running.start()
        try:
            yield running
        finally:
            running.stop()
    finally:
        home.tear_down()


def add_staff(server: IssuerServer, agency: str, role: str, username: str) -> Staff:
    done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", agency, "--role", role, "--username",
                           username, "--name", username, "--password-stdin"], env=server.home.env,
                          input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return Staff(server.url, username, done.stdout.strip().splitlines()[-2])


@pytest.fixture(scope="module")
def clerk(server: IssuerServer) -> Iterator[httpx.Client]:
    with closing(add_staff(server, AGENCY_A, "clerk", "upload-clerk").client()) as client:
        yield client


def record_row(serial: int, code: str | None = None) -> list[str]:
    return [f"测试户{serial}", code or id_number(serial), f"3301066000{serial:05d}", "2045-12-31", "个体工商户",
            f"浙江省杭州市西湖区文三路{serial}号"]  # fmt: skip


HEADER = ["holder.name", "holder.code", "number", "validUntil", "ext.type", "ext.address"]


def csv_file(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(client: httpx.Client, body: bytes, name: str = "records.csv", lang: str = "zh") -> httpx.Response:
    token = csrf_of(client.get(f"/console/upload?lang={lang}").text)
    return client.post(f"/console/upload?lang={lang}", data={"csrf_token": token, "type": TYPE},
                       files={"file": (name, body, "text/csv")})  # fmt: skip


def job_id_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/console/jobs/([0-9a-f]+)\?lang=(zh|en)", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def wait_done(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 120
    seen: list[int] = []
    while True:
        answer = client.get(f"/console/jobs/{job_id}.json")
        assert answer.status_code == 200, answer.text
        state = answer.json()
        seen.append(state["processed"])
        if state["done"]:
            assert seen == sorted(seen)  # progress never goes back
            return dict(state)
        assert time.monotonic() < deadline, state
        time.sleep(0.3)


def jobs_in(server: IssuerServer) -> int:
    with sqlite3.connect(server.home.root / ".ecert" / "issuer" / "issuer.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])


def test_a_clerk_uploads_a_csv_with_two_bad_rows(server: IssuerServer, clerk: httpx.Client) -> None:
    rows = [record_row(i) for i in range(1, 11)]
    rows[2] = record_row(3, broken(id_number(3)))  # data row 3 (line 4 of the file)
    rows[6][0] = ""  # data row 7: no holder name
    form = clerk.get("/console/upload")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    assert f'value="{TYPE}"' in form.text  # the agency's granted type is offered
    job_id = job_id_of(upload(clerk, csv_file(rows)))

    page = clerk.get(f"/console/jobs/{job_id}")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<progress id="job-progress" max="10"' in page.text and 'aria-live="polite"' in page.text
    assert '<label for="job-progress"' in page.text
    assert '<meta http-equiv="refresh"' in page.text or "（已完成）" in page.text  # no script: it reloads
    assert [int(n) for n in re.findall(r'data-error-row="(\d+)"', page.text)] == [3, 7]
    assert "1 = CSV 表头行之后的第一条记录" in page.text

    state = wait_done(clerk, job_id)
    assert state["total"] == 10 and state["processed"] == 10 and state["failed"] == 2
    assert state["counts"]["confirmed"] == 8  # type: ignore[index]
    done_page = clerk.get(f"/console/jobs/{job_id}?lang=en")
    assert 'value="10"' in done_page.text and "Processed 10 / 10 (done)" in done_page.text
    assert '<meta http-equiv="refresh"' not in done_page.text

    for lang, first in (("en", "row (data row: 1 = the first record after the CSV header line"),
                        ("zh", "row 数据行号（1 = CSV 表头行之后的第一条记录")):  # fmt: skip
        answer = clerk.get(f"/console/jobs/{job_id}/errors.csv?lang={lang}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        table = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
        assert table[0][0].startswith(first) and len(table[0]) == 4
        assert [(r[0], r[1], r[2]) for r in table[1:]] == [("3", "holder.code", "ID_CHECK_CHAR"),
                                                           ("7", "holder", "FIELD_MISSING")]  # fmt: skip

    with sqlite3.connect(server.home.root / ".ecert" / "issuer" / "issuer.sqlite") as db:
        details = [json.loads(d) for (d,) in db.execute(
            "SELECT details FROM audit_log WHERE action = 'issue' AND subject = ?", (job_id,))]  # fmt: skip
    assert details == [{"what": "upload", "jobId": job_id, "typeCode": TYPE, "records": 10, "refused": 2}]


def test_jsonl_rows_count_records_not_lines(clerk: httpx.Client) -> None:
    good = {"holder": {"name": "钱多多", "code": id_number(21)}, "validUntil": "2045-12-31",
            "ext": {"type": "个体工商户", "address": "浙江省杭州市西湖区文二路1号"}}  # fmt: skip
    bad = {**good, "validUntil": "明年"}
    lines = [json.dumps(good, ensure_ascii=False), "", json.dumps(bad, ensure_ascii=False)]
    job_id = job_id_of(upload(clerk, "\n".join(lines).encode(), "records.jsonl", "en"))
    table = list(csv.reader(io.StringIO(clerk.get(f"/console/jobs/{job_id}/errors.csv?lang=en").text)))
    assert [(r[0], r[1], r[2]) for r in table[1:]] == [
        ("2", "validUntil", "FIELD_INVALID")
    ]  # line 3, record 2


def test_sending_the_form_twice_makes_one_job(server: IssuerServer, clerk: httpx.Client) -> None:
    form = clerk.get("/console/upload").text
    fields = {
        "csrf_token": csrf_of(form),
        "type": TYPE,
        "token": re.findall(r'name="token" value="([0-9a-f]+)"', form)[0],
    }
    body = csv_file([record_row(71), record_row(72)])
    before = jobs_in(server)
    first = job_id_of(clerk.post("/console/upload", data=fields, files={"file": ("r.csv", body, "text/csv")}))
    again = job_id_of(clerk.post("/console/upload", data=fields, files={"file": ("r.csv", body, "text/csv")}))
    assert again == first and jobs_in(server) == before + 1
    with sqlite3.connect(server.home.root / ".ecert" / "issuer" / "issuer.sqlite") as db:
        logged = db.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'issue' AND subject = ?", (first,)
        ).fetchone()
    assert logged[0] == 1  # the resent form is not a second issuance in the audit trail
    other = clerk.post(
        "/console/upload", data=fields, files={"file": ("r.csv", csv_file([record_row(73)]), "text/csv")}
    )
    assert other.status_code == 409 and 'data-problem="IDEMPOTENCY_CONFLICT"' in other.text
    assert jobs_in(server) == before + 1


def test_an_auditor_is_refused_but_reads_the_job(server: IssuerServer, clerk: httpx.Client) -> None:
    job_id = job_id_of(upload(clerk, csv_file([record_row(31)])))
    with closing(add_staff(server, AGENCY_A, "auditor", "upload-auditor").client()) as auditor:
        form = auditor.get("/console/upload")
        assert form.status_code == 403 and 'data-problem="STAFF_ROLE_FORBIDDEN"' in form.text
        before = jobs_in(server)
        refused = auditor.post("/console/upload", data={"csrf_token": csrf_of(form.text), "type": TYPE},
                               files={"file": ("r.csv", csv_file([record_row(32)]), "text/csv")})  # fmt: skip
        assert refused.status_code == 403 and 'data-problem="STAFF_ROLE_FORBIDDEN"' in refused.text
        assert jobs_in(server) == before
        page = auditor.get(f"/console/jobs/{job_id}")
        assert page.status_code == 200 and "data-upload-link" not in page.text
        assert auditor.get(f"/console/jobs/{job_id}.json").json()["total"] == 1
        wrong_length = id_number(33) + "1"  # quoted whole in the intake's message
        with_value = job_id_of(upload(clerk, csv_file([record_row(33, wrong_length)]), lang="en"))
        assert wrong_length in clerk.get(f"/console/jobs/{with_value}/errors.csv").text
        masked = auditor.get(f"/console/jobs/{with_value}/errors.csv?lang=en")
        assert masked.status_code == 200 and "ID_FORMAT" in masked.text and wrong_length not in masked.text


def test_another_agencys_job_is_not_found(server: IssuerServer, clerk: httpx.Client) -> None:
    job_id = job_id_of(upload(clerk, csv_file([record_row(41)])))
    with closing(add_staff(server, AGENCY_B, "clerk", "upload-clerk-b").client()) as other:
        for path in (
            f"/console/jobs/{job_id}",
            f"/console/jobs/{job_id}.json",
            f"/console/jobs/{job_id}/errors.csv",
        ):
            answer = other.get(path)
            assert answer.status_code == 404, path
            assert job_id not in answer.text
        assert other.get("/console/jobs/not-a-job").status_code == 404
    assert httpx.get(f"{server.url}/console/jobs/{job_id}.json").status_code in (303, 401)  # no session


def test_a_post_without_csrf_or_from_elsewhere_is_refused(server: IssuerServer, clerk: httpx.Client) -> None:
    before = jobs_in(server)
    files = {"file": ("r.csv", csv_file([record_row(51)]), "text/csv")}
    missing = clerk.post("/console/upload", data={"type": TYPE}, files=files)
    assert missing.status_code == 403 and 'data-problem="CSRF_INVALID"' in missing.text
    token = csrf_of(clerk.get("/console/upload").text)
    elsewhere = clerk.post("/console/upload", data={"csrf_token": token, "type": TYPE}, files=files,
                           headers={"Origin": "http://evil.example"})  # fmt: skip
    assert elsewhere.status_code == 403 and 'data-problem="CSRF_INVALID"' in elsewhere.text
    assert jobs_in(server) == before


def test_hostile_files_are_refused_or_neutralised(server: IssuerServer, clerk: httpx.Client) -> None:
    before = jobs_in(server)
    not_utf8 = upload(clerk, "holder.name\r\n张三\r\n".encode("gb18030"))
    assert not_utf8.status_code == 422 and 'data-problem="UPLOAD_ENCODING"' in not_utf8.text
    huge = upload(clerk, csv_file([["张三", "x" * 300_000, "", "2045-12-31", "", ""]]))
    assert huge.status_code == 422 and 'data-problem="CSV_MALFORMED"' in huge.text
    empty = upload(clerk, csv_file([]))
    assert empty.status_code == 422 and 'data-problem="BATCH_EMPTY"' in empty.text
    assert jobs_in(server) == before

    formula = '=HYPERLINK("http://evil.example","点我")'
    job_id = job_id_of(upload(clerk, csv_file([[*record_row(61), "1"]], [*HEADER, formula]), lang="en"))
    page = clerk.get(f"/console/jobs/{job_id}?lang=en")
    shown = re.search(r'<tr data-error-row="1">.*?</tr>', page.text)
    assert shown and "<a" not in shown.group(0) and "=HYPERLINK(&#34;" in shown.group(0)  # escaped text
    table = list(csv.reader(io.StringIO(clerk.get(f"/console/jobs/{job_id}/errors.csv").text)))
    assert table[1][0] == "1" and table[1][2] == "FIELD_UNKNOWN"
    assert table[1][1].startswith("'=HYPERLINK(") and formula.startswith(table[1][1][1:])  # stored cut short
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in table[1:] for cell in row)
