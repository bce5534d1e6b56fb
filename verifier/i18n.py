"""Words of the verifier's pages in Chinese (default) and English."""

from __future__ import annotations

from registry.certificate.labels import field_label as catalogue_label

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "电子证照核验",
        "VALID": "核验通过",
        "INVALID": "核验未通过",
        "ERROR": "暂时无法核验",
        "valid_hint": "该证照真实、未被篡改、由有权机关签发且当前有效。",
        "invalid_hint": "请勿采信该证照。原因：",
        "error_hint": "区块链暂不可用，请稍后重试。本结果不代表证照有效。",
        "disclosed": "持证人披露的信息",
        "checks": "核验项目",
        "expires": "分享有效期至",
        "SHARE_WITHDRAWN": "持证人已撤回该分享，信息不再提供。",
        "SHARE_EXPIRED": "该分享已过期，信息不再提供。",
        "SHARE_USED": "该分享为一次性分享，已被查看过。",
        "SHARE_NOT_FOUND": "分享链接无效或不存在。",
        "SHARE_CODE_EXPIRED": "动态码已过期，请让持证人出示最新二维码。",
        "SHARE_IDENTIFIED_ONLY": "持证人仅向已认证的机构出示该证照。",
        "signin_title": "请以机构身份查看",
        "signin_hint": "机构工作人员请登录本核验点的前台后重新打开此链接，或由本机构系统使用 API 密钥核验。匿名访问者看不到证照信息。",
        "signin_action": "机构工作人员登录",
        "more": "更多（代码与标识）",
        "other_lang": "English",
        "receipt": "核验回执",
        "source": "数据来源",
        "block": "区块高度",
        # the page of a verification link, <node>/v#EC1:… (verifier/api/scan.py)
        "scan_title": "核验电子证照",
        "scan_intro": "扫描电子证照或其打印件上的二维码即可核验。链接中“#”之后的证照内容只在您的浏览器中读取，不会发送到服务器日志。",
        "scan_code": "二维码内容（以 EC1: 开头，或核验链接）",
        "scan_purpose": "核验用途（选填）",
        "scan_submit": "核验",
        "scan_checking": "正在核验二维码中的证照…",
        "scan_nojs": "浏览器未运行脚本：请将二维码内容粘贴到下方后点击“核验”。",
        "scan_fields": "二维码中的证照信息",
        "scan_compare": "二维码只证明以下信息；请核对打印件或证照上的其余内容与之相符。",
        "scan_again": "核验另一张证照",
        "desk_link": "机构工作人员请使用核验前台（扫码、上传照片或 PDF、扫码枪）",
        "LINK_INVALID": "这不是电子证照的核验链接或二维码内容。",
        "CERT_MALFORMED": "无法读取该二维码内容：它不是完整的电子证照二维码。",
        "CERT_FORMAT": "无法读取该二维码内容：证照格式不受支持。",
    },
    "en": {
        "title": "Certificate verification",
        "VALID": "Verified",
        "INVALID": "Not valid",
        "ERROR": "Cannot verify now",
        "valid_hint": "Authentic, unaltered, issued by an authorised agency and in force.",
        "invalid_hint": "Do not rely on this certificate. Reason: ",
        "error_hint": "The blockchain is unavailable; try again later. This is not a valid result.",
        "disclosed": "Fields the holder disclosed",
        "checks": "Checks",
        "expires": "Share expires",
        "SHARE_WITHDRAWN": "The holder withdrew this share: its fields are no longer shown.",
        "SHARE_EXPIRED": "This share has expired: its fields are no longer shown.",
        "SHARE_USED": "This single-use share was already opened.",
        "SHARE_NOT_FOUND": "This share link is wrong or does not exist.",
        "SHARE_CODE_EXPIRED": "This code has expired: ask the holder for the current QR code.",
        "SHARE_IDENTIFIED_ONLY": "The holder shows this certificate to identified organisations only.",
        "signin_title": "Open it as an organisation",
        "signin_hint": "Staff of an organisation: sign in at this node's front desk and open the link again, or have your organisation's system verify it with its API key. Anonymous visitors see none of the certificate's fields.",
        "signin_action": "Staff sign-in",
        "more": "More (codes and identifiers)",
        "other_lang": "中文",
        "receipt": "Receipt",
        "source": "Answered from",
        "block": "Block",
        # the page of a verification link, <node>/v#EC1:… (verifier/api/scan.py)
        "scan_title": "Verify an e-certificate",
        "scan_intro": "Scan the QR code of an e-certificate or of its printout to verify it. The certificate in the link, after “#”, is read in your browser only: it never reaches a server log.",
        "scan_code": "QR code content (starting with EC1:, or the verification link)",
        "scan_purpose": "Purpose (optional)",
        "scan_submit": "Verify",
        "scan_checking": "Verifying the certificate in the QR code…",
        "scan_nojs": "Scripts are not running: paste the QR code's content below and press Verify.",
        "scan_fields": "Fields in the QR code",
        "scan_compare": "The QR code proves only the fields below: check that the printout or certificate agrees with them.",
        "scan_again": "Verify another certificate",
        "desk_link": "Organisation staff: use the front desk (camera, photo or PDF upload, USB scanner)",
        "LINK_INVALID": "This is not a verification link or QR code of an e-certificate.",
        "CERT_MALFORMED": "This QR code cannot be read: it is not a whole e-certificate code.",
        "CERT_FORMAT": "This QR code cannot be read: its certificate format is not supported.",
    },
}

# GB status reason codes an agency gives with a status change, in Chinese and English.
STATUS_REASONS: dict[int, dict[str, str]] = {
    1: {"zh": "有效", "en": "in force"},
    2: {"zh": "暂扣", "en": "withheld"},
    3: {"zh": "撤销", "en": "annulled"},
    4: {"zh": "注销", "en": "cancelled"},
    7: {"zh": "吊销", "en": "revoked as a penalty"},
    99: {"zh": "其他", "en": "other reason"},
}


def status_reason(code: int) -> dict[str, str]:
    """`{"zh": "吊销", "en": "revoked as a penalty"}`; a code outside the list is shown as its number."""
    return STATUS_REASONS.get(code) or {"zh": f"原因代码 {code:02d}", "en": f"reason code {code:02d}"}


LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "identifier": "证照标识",
        "name": "证照名称",
        "number": "证照编号",
        "typeCode": "证照类型代码",
        "issuer.name": "发证机关",
        "issuer.code": "发证机关代码",
        "issuer.region": "发证机关区划",
        "issuedDate": "发证日期",
        "holder.name": "持证主体",
        "holder.code": "持证主体代码",
        "holder.codeMasked": "持证主体代码（脱敏）",
        "holder.codeType": "代码类型",
        "validFrom": "有效期起",
        "validUntil": "有效期至",
        "ext.legalRepresentative": "法定代表人",
        "ext.type": "类型",
        "ext.registeredCapital": "注册资本",
        "ext.address": "住所",
        "ext.scope": "经营范围",
    },
    "en": {
        "identifier": "Identifier",
        "name": "Certificate",
        "number": "Number",
        "typeCode": "Type code",
        "issuer.name": "Issued by",
        "issuer.code": "Issuer code",
        "issuer.region": "Issuer region",
        "issuedDate": "Issued on",
        "holder.name": "Holder",
        "holder.code": "Holder code",
        "holder.codeMasked": "Holder code (masked)",
        "holder.codeType": "Code type",
        "validFrom": "Valid from",
        "validUntil": "Valid until",
        "ext.legalRepresentative": "Legal representative",
        "ext.type": "Type",
        "ext.registeredCapital": "Registered capital",
        "ext.address": "Address",
        "ext.scope": "Business scope",
    },
}


def field_label(lang: str, path: str, type_code: str = "") -> str:
    """The registry's one catalogue (`registry.certificate.labels`): never a raw `ext.*` key."""
    return catalogue_label(type_code, path, lang)
