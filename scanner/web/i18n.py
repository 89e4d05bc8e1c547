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
    "hidden_changes": {
        "en": "{} change(s) to rules of customers you do not manage are not shown.",
        "ja": "担当外の顧客のルールへの変更 {} 件は表示されません。",
    },
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
        "en": "Every message that carried this customer's secrets: relayed (passed in scope, "
        "or flagged), held and how that ended, and incidents the mailbox poller found.",
        "ja": "この顧客の機密を含んだすべてのメッセージ: 中継されたもの"
        "（範囲内で通過、または警告付き）、保留とその結末、メールボックス監視が検出した"
        "インシデント。",
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
    "release_extend": {"en": "Release and widen the rule's scope",
                       "ja": "送信を許可し、ルールの許可範囲を広げる"},
    "extend_hint": {
        "en": "Adds the chosen recipients (or their domains) to the rule's allowed scope in a "
        "new, immediately active rules version, then releases this message.",
        "ja": "選んだ宛先（またはそのドメイン）をルールの許可範囲に追加した新しいバージョンを"
        "すぐに有効にし、このメッセージの送信を許可します。",
    },
    "scope_address": {"en": "this address", "ja": "このアドレス"},
    "scope_domain": {"en": "its whole domain", "ja": "ドメイン全体"},
    "until_optional": {"en": "Until (optional)", "ja": "期限（任意）"},
    "extend_done": {"en": "Rules version v{0} is now active.",
                    "ja": "ルールのバージョン v{0} が有効になりました。"},
    "status_title": {"en": "Your held message", "ja": "保留中のメッセージ"},
    "status_held": {"en": "held for review", "ja": "確認待ち（保留中）"},
    "status_released": {"en": "released and delivered", "ja": "送信が許可されました"},
    "status_rejected": {"en": "rejected — not delivered", "ja": "却下されました（未配送）"},
    "status_expired": {"en": "expired — not decided in time", "ja": "期限切れ"},
    "status_sent": {"en": "already sent", "ja": "送信済み"},
    "your_requests": {"en": "Your release requests", "ja": "送信許可の依頼"},
    "justification": {"en": "Why should it be sent?", "ja": "送信が必要な理由"},
    "request_release": {"en": "Ask for release", "ja": "送信許可を依頼"},
    "request_only": {
        "en": "A compliance reviewer decides; your request and justification are recorded.",
        "ja": "判断はコンプライアンス担当者が行います。依頼と理由は記録されます。",
    },
    "request_recorded": {"en": "Your request was recorded.", "ja": "依頼を記録しました。"},
    "justification_required": {"en": "Please give a justification.",
                               "ja": "理由を入力してください。"},
    "too_many_requests": {"en": "This message has enough requests already.",
                          "ja": "このメッセージへの依頼は上限に達しています。"},
    "status_decided": {"en": "This message was already decided.",
                       "ja": "このメッセージは判断済みです。"},
    "release_requests": {"en": "Release requests from the sender",
                         "ja": "送信者からの送信許可の依頼"},
    "requested": {"en": "release requested", "ja": "許可依頼あり"},
    "edit_rule": {"en": "Edit rule", "ja": "ルールを編集"},
    "edit": {"en": "edit", "ja": "編集"},
    "terms_one_per_line": {"en": "Terms (one per line)", "ja": "語句（1行に1つ）"},
    "allow_domains": {"en": "Allowed domains", "ja": "許可ドメイン"},
    "allow_addresses": {"en": "Allowed addresses", "ja": "許可アドレス"},
    "allow_groups": {"en": "Allowed groups", "ja": "許可グループ"},
    "allow_internal": {"en": "All internal recipients allowed", "ja": "社内宛はすべて許可"},
    "admin": {"en": "Users and tokens", "ja": "ユーザーとトークン"},
    "users": {"en": "Users", "ja": "ユーザー"},
    "roles": {"en": "Roles", "ja": "ロール"},
    "rule_prefixes": {"en": "Rule id prefixes", "ja": "ルールIDの接頭辞"},
    "disabled": {"en": "Disabled", "ja": "無効"},
    "save": {"en": "Save", "ja": "保存"},
    "saved": {"en": "Saved.", "ja": "保存しました。"},
    "add_user": {"en": "Add user", "ja": "ユーザーを追加"},
    "api_tokens": {"en": "API tokens", "ja": "API トークン"},
    "label": {"en": "Label", "ja": "ラベル"},
    "create_token": {"en": "Create token", "ja": "トークンを作成"},
    "revoke": {"en": "Revoke", "ja": "無効化"},
    "revoked": {"en": "revoked", "ja": "無効化済み"},
    "token_once": {
        "en": "Copy this token now: it is shown only once.",
        "ja": "このトークンを今すぐコピーしてください。表示は一度だけです。",
    },
    "dry_run_corpus": {"en": "Dry run on sample mail", "ja": "サンプルメールで試行"},
    "corpus_hint": {
        "en": ".eml files or an .mbox; each is judged by the active version and this one.",
        "ja": ".eml ファイルまたは .mbox。有効なバージョンとこのバージョンで判定します。",
    },
    "corpus_hit": {"en": "hit by this version", "ja": "このバージョンで検出"},
    "stricter": {"en": "stricter", "ja": "厳しく"},
    "looser": {"en": "looser", "ja": "緩く"},
    "sample": {"en": "Sample", "ja": "サンプル"},
    "scanning": {"en": "Uploaded; scanning…", "ja": "アップロード完了、検査中…"},
    "corpus_unreadable": {"en": "Not mail (skipped)", "ja": "メールではありません（スキップ）"},
    "corpus_stopped": {
        "en": "Stopped at a limit: {0} of {1} messages checked.",
        "ja": "上限に達したため停止しました: {1} 件中 {0} 件を確認。",
    },
    "grants": {"en": "Time-limited scope extensions", "ja": "期限付きの許可範囲の追加"},
    "lapses_after": {"en": "lapses after", "ja": "失効日の翌日に削除"},
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
