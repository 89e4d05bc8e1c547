"""Customer-secret rules: parse (YAML/CSV) → validate → compile into an immutable ruleset.

Pure: functions take text and a display file name and return values or raise ``RuleError``
with every problem located (file, line, column, rule id); reading files is the caller's job.
"""
