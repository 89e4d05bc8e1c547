"""The review app's words in English and Japanese, and the choice between them.

Owns the message catalogue (key → text per language) and the language negotiation: a ``lang``
cookie set by the switcher wins, then the browser's ``Accept-Language``, then English. It must
not translate user data (subjects, rule ids, reasons are shown as written). Hazard: a missing
key shows the key itself rather than failing a page, and ``tests/web`` checks both catalogues
have the same keys.
"""

from __future__ import annotations

LANGUAGES = ("en", "ja")

MESSAGES: dict[str, dict[str, str]] = {
    "app": {"en": "Maruhi review", "ja": "マル秘 審査"},
    "login": {"en": "Log in", "ja": "ログイン"},
    "logout": {"en": "Log out", "ja": "ログアウト"},
    "username": {"en": "User name", "ja": "ユーザー名"},
    "password": {"en": "Password", "ja": "パスワード"},
    "login_failed": {
        "en": "Wrong user name or password.",
        "ja": "ユーザー名またはパスワードが違います。",
    },
    "login_throttled": {
        "en": "Too many failed log-ins. Try again in a few minutes.",
        "ja": "ログイン失敗が多すぎます。数分後にもう一度お試しください。",
    },
    "quarantine": {"en": "Quarantine", "ja": "隔離メール"},
    "rules": {"en": "Rules", "ja": "ルール"},
    "audit": {"en": "Audit log", "ja": "監査ログ"},
    "ledger": {"en": "Disclosure ledger", "ja": "開示台帳"},
    "received": {"en": "Received", "ja": "受信日時"},
    "age": {"en": "Age", "ja": "経過"},
    "sender": {"en": "Sender", "ja": "送信者"},
    "recipients": {"en": "Recipients", "ja": "宛先"},
    "out_of_scope": {"en": "Out of scope", "ja": "範囲外の宛先"},
    "rule_ids": {"en": "Rules", "ja": "ルール"},
    "customer": {"en": "Customer", "ja": "顧客"},
    "size": {"en": "Size", "ja": "サイズ"},
    "subject": {"en": "Subject", "ja": "件名"},
    "status": {"en": "Status", "ja": "状態"},
    "all": {"en": "all", "ja": "すべて"},
    "filter": {"en": "Filter", "ja": "絞り込み"},
    "rule": {"en": "Rule", "ja": "ルール"},
    "recipient_domain": {"en": "Recipient domain", "ja": "宛先ドメイン"},
    "since": {"en": "From", "ja": "開始日"},
    "until": {"en": "To", "ja": "終了日"},
    "search_subject": {"en": "Subject contains", "ja": "件名に含む"},
    "next_page": {"en": "Next page", "ja": "次のページ"},
    "first_page": {"en": "First page", "ja": "最初のページ"},
    "no_messages": {"en": "No messages.", "ja": "メッセージはありません。"},
    "release": {"en": "Release", "ja": "送信を許可"},
    "reject": {"en": "Reject", "ja": "却下"},
    "reason": {"en": "Reason", "ja": "理由"},
    "reason_required": {"en": "A reason is required.", "ja": "理由を入力してください。"},
    "selected": {"en": "Selected messages", "ja": "選択したメッセージ"},
    "decided": {"en": "Decision recorded.", "ja": "判断を記録しました。"},
    "already_decided": {"en": "Already decided earlier.", "ja": "すでに判断済みです。"},
    "headers": {"en": "Headers", "ja": "ヘッダー"},
    "envelope": {"en": "Envelope", "ja": "エンベロープ"},
    "hits": {"en": "Hits", "ja": "検出"},
    "location": {"en": "Location", "ja": "場所"},
    "context": {"en": "Context", "ja": "前後の文脈"},
    "why": {"en": "Why out of scope", "ja": "範囲外の理由"},
    "owner": {"en": "Owner", "ja": "担当者"},
    "expires": {"en": "Expires", "ja": "有効期限"},
    "body": {"en": "Body", "ja": "本文"},
    "raw_source": {"en": "Raw source", "ja": "ソース表示"},
    "attachments": {"en": "Attachments", "ja": "添付ファイル"},
    "more_occurrences": {"en": "more occurrences", "ja": "件の他の出現"},
    "no_context_role": {
        "en": "Your role does not show message content.",
        "ja": "このロールではメッセージ内容は表示されません。",
    },
    "upload_rules": {"en": "Upload a rules file", "ja": "ルールファイルをアップロード"},
    "upload_hint": {
        "en": "YAML, or CSV from Excel (UTF-8 with BOM or Shift_JIS).",
        "ja": "YAML、または Excel の CSV（BOM 付き UTF-8 または Shift_JIS）。",
    },
    "upload": {"en": "Check and show changes", "ja": "検証して変更を表示"},
    "uploading": {"en": "Uploading…", "ja": "アップロード中…"},
    "problems": {
        "en": "Problems — nothing was changed",
        "ja": "問題があります（何も変更されていません）",
    },
    "line": {"en": "Line", "ja": "行"},
    "column": {"en": "Column", "ja": "列"},
    "message": {"en": "Message", "ja": "内容"},
    "diff": {"en": "Changes against the active version", "ja": "有効なバージョンとの差分"},
    "added": {"en": "Added", "ja": "追加"},
    "removed": {"en": "Removed", "ja": "削除"},
    "changed": {"en": "Changed", "ja": "変更"},
    "terms_added": {"en": "terms added", "ja": "語句追加"},
    "terms_removed": {"en": "terms removed", "ja": "語句削除"},
    "no_changes": {"en": "No changes.", "ja": "変更はありません。"},
    "activate": {"en": "Activate this version", "ja": "このバージョンを有効にする"},
    "rollback": {"en": "Roll back to this version", "ja": "このバージョンに戻す"},
    "activated": {"en": "Version activated.", "ja": "バージョンを有効にしました。"},
    "active_version": {"en": "Active version", "ja": "有効なバージョン"},
    "none_yet": {"en": "No rules yet.", "ja": "ルールはまだありません。"},
    "history": {"en": "Version history", "ja": "バージョン履歴"},
    "version": {"en": "Version", "ja": "バージョン"},
    "author": {"en": "Author", "ja": "作成者"},
    "time": {"en": "Time", "ja": "日時"},
    "active": {"en": "active", "ja": "有効"},
    "expiring": {"en": "Expiring within 14 days", "ja": "14日以内に期限切れ"},
    "dry_run": {"en": "Dry run against the quarantine", "ja": "隔離メールで試行"},
    "dry_run_result": {"en": "Dry run result", "ja": "試行結果"},
    "would_pass": {"en": "would pass", "ja": "通過になる"},
    "would_change": {"en": "would be judged differently", "ja": "判定が変わる"},
    "unchanged": {"en": "unchanged", "ja": "変わらない"},
    "checked": {"en": "messages checked", "ja": "件を確認"},
    "outside_scope": {
        "en": "These rules are outside the customers you manage:",
        "ja": "次のルールは担当外の顧客のものです:",
    },
    "forbidden": {"en": "You are not allowed to do this.", "ja": "この操作は許可されていません。"},
    "not_found": {"en": "Not found.", "ja": "見つかりません。"},
    "csrf_failed": {
        "en": "The form expired. Reload the page and try again.",
        "ja": "フォームの有効期限が切れました。再読み込みしてください。",
    },
    "export_csv": {"en": "Export CSV", "ja": "CSV 出力"},
    "actor": {"en": "Actor", "ja": "実行者"},
    "action": {"en": "Action", "ja": "操作"},
    "object": {"en": "Object", "ja": "対象"},
    "details": {"en": "Details", "ja": "詳細"},
    "ledger_note": {
        "en": "From the quarantine: held messages and how they ended. Passed (in-scope) "
        "messages are not recorded yet.",
        "ja": "隔離メールから作成: 保留されたメッセージとその結末。範囲内で通過したメッセージは"
        "まだ記録されていません。",
    },
    "in_scope": {"en": "In scope", "ja": "範囲内"},
    "reason_domain": {"en": "domain {0} is not allowed", "ja": "ドメイン {0} は許可されていません"},
    "reason_allowed": {"en": "allowed: {0}", "ja": "許可: {0}"},
    "reason_nothing": {"en": "nothing is allowed", "ja": "許可された宛先はありません"},
    "reason_internal": {
        "en": "internal recipients are not allowed by this rule",
        "ja": "このルールは社内宛を許可していません",
    },
    "reason_recipient_domain": {
        "en": "mail to this domain is always checked",
        "ja": "このドメイン宛のメールは常に検査されます",
    },
    "reason_unknown_rule": {
        "en": "the rule is no longer in any stored version",
        "ja": "このルールは保存されたバージョンにありません",
    },
    "language": {"en": "日本語", "ja": "English"},
}


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """``ja`` or ``en``: the switcher's cookie, else the browser's first supported language."""
    if cookie in LANGUAGES:
        return cookie
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            weighted.append((-quality, index, primary))
    return sorted(weighted)[0][2] if weighted else "en"


def translator(lang: str) -> Translator:
    return Translator(lang if lang in LANGUAGES else "en")


class Translator:
    """``t("key", arg, ...)`` in templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, *args: object) -> str:
        entry = MESSAGES.get(key)
        text = key if entry is None else entry.get(self.lang, entry["en"])
        return text.format(*args) if args else text
