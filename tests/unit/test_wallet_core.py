"""The wallet's own logic without HTTP: passwords, CSRF tokens, sessions and rate limits (clock
passed in), claim codes, share field choices, faces, and the two languages kept in step."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from registry.certificate.presentation import Presentation
from registry.database import make_engine, sessions
from registry.errors import CertificateError
from registry.password_hash import dummy_hash, hash_password, needs_rehash, verify_password
from registry.problems import RateLimited
from wallet.db import migrate
from wallet.faces import face_rows
from wallet.i18n import field_label, messages, reason_text
from wallet.passwords import PasswordRejected, check_password_rules
from wallet.sessions import Csrf, LoginSessions
from wallet.sharing import ALWAYS, EXPIRY_MINUTES, disclosed_paths, field_choices
from wallet.throttle import Throttle
from wallet.vault import claim_code_from

TEMPLATES = Path(__file__).resolve().parents[2] / "wallet" / "templates"


@pytest.fixture(scope="module")
def package() -> Presentation:
    from test_wallet_app import ALICE, packages

    return packages(("王小丽", ALICE))[0]


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wallet.sqlite'}")
    migrate(engine)
    yield sessions(engine)
    engine.dispose()


def test_passwords_are_salted_scrypt_and_can_be_upgraded() -> None:
    stored = hash_password("correct horse", n=1024)
    assert stored.startswith("scrypt$1024$8$1$") and stored != hash_password("correct horse", n=1024)
    assert verify_password("correct horse", stored) and not verify_password("correct horsE", stored)
    assert not verify_password("x", "bcrypt$whatever") and not verify_password("x", "garbage")
    assert not verify_password("00000000", dummy_hash(1024))
    assert needs_rehash(stored, n=2048) and not needs_rehash(stored, n=1024)
    for weak in ("short", "aaaaaaaaaa", "my330106199001010114"):
        with pytest.raises(PasswordRejected):
            check_password_rules(weak, id_number="330106199001010114")


def test_csrf_tokens_are_bound_to_their_session() -> None:
    csrf = Csrf(b"k" * 32)
    token = csrf.token("session:abc")
    assert csrf.check("session:abc", token)
    assert (
        not csrf.check("session:abd", token)
        and not csrf.check("session:abc", None)
        and not csrf.check(None, token)
    )
    assert not Csrf(b"j" * 32).check("session:abc", token)


def test_sessions_expire_when_idle_and_at_their_lifetime(db) -> None:
    clock = Clock()
    store = LoginSessions(db, idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=2), clock=clock)
    from wallet.models import Holder

    with db.begin() as session:
        session.add(
            Holder(id=1, holder_ref="r", id_lookup="l", id_number_enc=b"", name_enc=b"", password_hash="")
        )
    token = store.create(1)
    assert (
        store.resolve(token).holder_id == 1 and store.resolve("nope") is None and store.resolve(None) is None
    )
    for _ in range(4):  # active use keeps it alive…
        clock.advance(minutes=25)
        assert store.resolve(token) is not None
    clock.advance(minutes=25)  # …until its lifetime ends (2 h)
    assert store.resolve(token) is None
    idle = store.create(1)
    clock.advance(minutes=31)
    assert store.resolve(idle) is None
    ended = store.create(1)
    store.end(ended)
    assert store.resolve(ended) is None


def test_throttle_counts_within_its_window(db) -> None:
    clock = Clock()
    throttle = Throttle(db, b"k" * 32, clock=clock)
    limit = [("login:acct:x", 3, dt.timedelta(minutes=5))]
    throttle.hit(["login:acct:x"] * 3)
    with pytest.raises(RateLimited) as raised:
        throttle.check(limit)
    assert 0 < raised.value.details["retryAfter"] <= 301
    throttle.check([("login:acct:y", 3, dt.timedelta(minutes=5))])  # other keys are not affected
    clock.advance(minutes=5, seconds=1)
    throttle.check(limit)
    throttle.hit(["login:acct:x"] * 3)
    throttle.clear(["login:acct:x"])
    throttle.check(limit)


@pytest.mark.parametrize(("text", "code"), [
    ("ABCD-EFGH-JKLM", "ABCD-EFGH-JKLM"),
    (" abcd efgh jklm ", "ABCD-EFGH-JKLM"),
    ("ABCDEFGHJKLM", "ABCD-EFGH-JKLM"),
    ("https://issuer.example/claim?code=WXYZ-2345-6789", "WXYZ-2345-6789"),
    ("ＡＢＣＤ－ＥＦＧＨ－ＪＫＬＭ".encode().decode(), None),
])  # fmt: skip
def test_claim_codes_are_found_in_what_was_typed_or_scanned(text: str, code: str | None) -> None:
    if code is None:
        with pytest.raises(CertificateError):
            claim_code_from(text)
    else:
        assert claim_code_from(text) == code


def test_claim_code_refuses_what_is_not_one() -> None:
    for text in ("", "ABCD-EFGH", "IIII-OOOO-0000", "hello"):
        with pytest.raises(CertificateError):
            claim_code_from(text)


def test_share_fields_default_to_the_masked_twin_and_always_carry_validity(package: Presentation) -> None:
    choices = {c.path: c for c in field_choices(package)}
    assert (
        choices["holder.code"].sensitive
        and not choices["holder.code"].default
        and choices["holder.codeMasked"].default
    )
    assert all(choices[p].always and choices[p].default for p in ALWAYS)
    assert choices["ext.scope"].values == ("餐饮服务", "食品销售")
    paths = disclosed_paths(package, ["holder.name", "ext.scope"])
    assert set(paths) == {
        "holder.name",
        "ext.scope[0]",
        "ext.scope[1]",
        "validFrom",
        "validUntil",
        "identifier",
        "typeCode",
        "issuer.code",
    }
    disclosure = package.disclose(paths)
    assert disclosure.computed_digest() == package.digest and "holder.code" not in disclosure.paths()
    for chosen, code in (
        ([], "FIELDS_EMPTY"),
        (["validFrom"], "FIELDS_EMPTY"),
        (["holder.nickname"], "FIELD_UNKNOWN"),
    ):
        with pytest.raises(CertificateError) as raised:
            disclosed_paths(package, chosen)
        assert raised.value.code == code
    assert EXPIRY_MINUTES[0] == 5 and EXPIRY_MINUTES[-1] == 30 * 24 * 60


def test_the_face_shows_the_masked_code_never_the_full_one(package: Presentation) -> None:
    face = face_rows(package, "en")
    paths = [row.path for row in face["rows"]]
    assert face["title"] == "营业执照" and "holder.code" not in paths and "holder.codeMasked" in paths
    validity = next(row for row in face["rows"] if row.path == "validity")
    assert (
        validity.value.endswith("至 2040-12-31")
        and validity.label == "有效期"
        and validity.label_en == "Validity"
    )
    assert face_rows(package, "zh")["rows"][0].label_en is None


def test_both_languages_have_every_word_the_templates_use() -> None:
    zh, en = messages("zh"), messages("en")
    assert set(zh) == set(en) and all(zh[k].strip() and en[k].strip() for k in zh)
    assert all(set(re.findall(r"{(\w+)}", zh[k])) == set(re.findall(r"{(\w+)}", en[k])) for k in zh)
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= {
            k
            for k in re.findall(r"t\('([\w.]+)'", template.read_text(encoding="utf-8"))
            if not k.endswith(".")
        }
    prefixed = {f"{p}.{v}" for p, values in {
        "verdict": ("VALID", "INVALID", "ERROR", "UNAVAILABLE"), "share.state": ("active", "used", "withdrawn", "expired", "unknown"),
        "expiry": EXPIRY_MINUTES, "purpose": ("bank", "loan", "rent", "job", "roadside", "errand", "custom"), "channel": ("link", "api", "qr"),
    }.items() for v in values}  # fmt: skip
    missing = sorted((used | prefixed) - set(zh))
    assert not missing, missing
    assert (
        field_label("en", "ext.scope[1]") == "Business scope"
        and field_label("zh", "ext.unknownThing") == "其他事项（Unknown thing）"  # never a raw ext.* key
    )
    assert (
        reason_text("zh", "CERT_SUSPENDED") == "证照已被暂扣"
        and reason_text("en", "SOMETHING_NEW") == "SOMETHING_NEW"
    )
    assert (
        json.loads((TEMPLATES.parent / "i18n" / "zh.json").read_text(encoding="utf-8"))["app.name"]
        == "证照钱包"
    )


def test_the_password_rule_the_demo_and_pages_state_is_the_rule_enforced() -> None:
    """The words (`RULE`, the register page's hint) name the length `check_password_rules` enforces."""
    from wallet.passwords import MAX_LENGTH, MIN_LENGTH, RULE

    id_number = "11010519491231002X"
    with pytest.raises(PasswordRejected):
        check_password_rules("ab1" + "x" * (MIN_LENGTH - 4), id_number=id_number)
    with pytest.raises(PasswordRejected):
        check_password_rules("ab1" + "x" * (MAX_LENGTH - 2), id_number=id_number)
    with pytest.raises(PasswordRejected):
        check_password_rules("a" * MIN_LENGTH, id_number=id_number)
    with pytest.raises(PasswordRejected):
        check_password_rules("pw" + id_number, id_number=id_number)
    check_password_rules("ab1" + "x" * (MIN_LENGTH - 3), id_number=id_number)
    for language in ("en", "zh"):
        assert str(MIN_LENGTH) in RULE[language] and str(MAX_LENGTH) in RULE[language]
        assert str(MIN_LENGTH) in messages(language)["register.password_hint"]


@pytest.mark.parametrize(("password", "code"), [
    ("Tr0ub4dor&", None),  # 10 characters, not a common one
    ("Tr0ub4dor", "PASSWORD_TOO_SHORT"),  # 9
    ("1qaz2wsx3edc", "PASSWORD_COMMON"),  # long enough, but among the 10,000 most common
    ("1234567890", "PASSWORD_COMMON"),
    ("QWERTYUIOP", "PASSWORD_COMMON"),  # compared without case
])  # fmt: skip
def test_passwords_are_at_least_10_characters_and_not_among_the_10_000_most_common(
    password: str, code: str | None
) -> None:
    id_number = "11010519491231002X"
    if code is None:
        check_password_rules(password, id_number=id_number)
        return
    with pytest.raises(PasswordRejected) as raised:
        check_password_rules(password, id_number=id_number)
    assert raised.value.code == code and raised.value.details.get("field") == "password"
    for language in ("en", "zh"):  # the holder is told why, in their language
        assert (
            messages(language)[f"error.{code}"]
            != messages("en" if language == "zh" else "zh")[f"error.{code}"]
        )
    assert (
        "10" in messages("zh")["error.PASSWORD_TOO_SHORT"]
        and "10" in messages("en")["register.password_hint"]
    )


def test_the_common_password_list_is_the_10_000_most_common_and_the_rule_says_so() -> None:
    from wallet.passwords import RULE, common_passwords

    common = common_passwords()
    assert len(common) == 10_000 and {"123456", "password", "qwertyuiop", "1qaz2wsx"} <= common
    assert "common" in RULE["en"] and "常见" in RULE["zh"] and "10" in RULE["en"] and "10" in RULE["zh"]
    assert (
        "常见" in messages("zh")["register.password_hint"]
        and "common" in messages("en")["register.password_hint"]
    )


def test_demo_passwords_pass_the_rule() -> None:
    import secrets

    for _ in range(500):  # what wallet/demo.py gives demo holders
        check_password_rules("demo-" + secrets.token_urlsafe(6), id_number="11010519491231002X")


def test_a_non_ascii_csrf_token_is_refused_not_an_error() -> None:
    """A hostile form field of any text is a wrong token (compare_digest raises on non-ASCII str)."""
    from wallet.sessions import Csrf

    csrf = Csrf(b"k" * 32)
    assert csrf.check("session:abc", csrf.token("session:abc"))
    assert not csrf.check("session:abc", "令牌" * 32)
    assert not csrf.check("session:abc", "ｆ" + csrf.token("session:abc")[1:])
