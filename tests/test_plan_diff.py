"""The diff tree: sensitive and unknown values, JSON strings, forced replacement, secret-looking names."""
from __future__ import annotations

import json

from tests.helpers import deep_json
from tfreview.plan.diff import SENSITIVE, UNKNOWN, build_tree, looks_secret, path_text


def child(node, *keys):
    for key in keys:
        node = dict(node.children)[key]
    return node


def test_a_changed_secret_says_changed_and_holds_no_value():
    tree = build_tree({"password": "old-pass"}, {"password": "new-pass"}, {}, {"password": True}, {"password": True})
    node = child(tree, "password")
    assert node.kind == "sensitive"
    assert node.action == "update" and node.note == "changed"
    assert (node.before, node.after) == (SENSITIVE, SENSITIVE)
    assert "old-pass" not in repr(tree) and "new-pass" not in repr(tree)


def test_an_unchanged_secret_is_no_change():
    tree = build_tree({"password": "same"}, {"password": "same"}, {}, {"password": True}, {"password": True})
    assert child(tree, "password").action == "no-op"


def test_sensitivity_only_change_is_reported_as_such():
    tree = build_tree({"x": "v"}, {"x": "v"}, {}, {}, {"x": True})
    assert child(tree, "x").note == "sensitivity changed"


def test_unknown_values_read_known_after_apply():
    tree = build_tree({"id": "i-1", "ip": "1.2.3.4"}, {"ip": "1.2.3.4"}, {"id": True}, {}, {})
    node = child(tree, "id")
    assert node.kind == "unknown" and node.after == UNKNOWN and node.before == "i-1"


def test_created_unknown_attributes_appear():
    tree = build_tree(None, {"name": "x"}, {"arn": True})
    assert tree.action == "create"
    assert child(tree, "arn").after == UNKNOWN


def test_json_strings_are_diffed_structurally():
    before = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}'
    after = '{"Statement": [{"Action": "s3:*", "Effect": "Allow"}], "Version": "2012-10-17"}'
    node = child(build_tree({"policy": before}, {"policy": after}), "policy")
    assert node.kind == "json"
    inner = node.children[0][1]
    action = child(inner, "Statement", 0, "Action")
    assert (action.before, action.after) == ("s3:GetObject", "s3:*")
    assert child(inner, "Version").action == "no-op"


def test_json_reformatting_alone_is_marked_formatting_only():
    node = child(build_tree({"p": '{"a": 1, "b": 2}'}, {"p": '{"b":2,"a":1}'}), "p")
    assert node.action == "update" and node.note == "formatting only"


def test_replace_paths_mark_the_forcing_attribute():
    tree = build_tree({"port": 80, "name": "x"}, {"port": 81, "name": "x"}, replace_paths=[("port",)])
    assert child(tree, "port").forces_replacement
    assert not child(tree, "name").forces_replacement


def test_a_forcing_block_keeps_its_mark_whatever_its_attributes_do():
    # An attribute added inside the block, or the whole block added: the block forces the replacement.
    tree = build_tree({"block": {"a": 1}}, {"block": {"a": 1, "b": 2}}, replace_paths=[("block",)])
    assert child(tree, "block").forces_replacement and not child(tree, "block", "b").forces_replacement
    tree = build_tree({"x": 1}, {"x": 1, "block": {"b": 2}}, replace_paths=[("block",)])
    assert child(tree, "block").forces_replacement and not child(tree, "block", "b").forces_replacement


def test_secret_looking_environment_values_are_masked_even_unmarked():
    before = {"environment": [{"variables": {"DB_PASSWORD": "p1", "LOG_LEVEL": "info"}}]}
    after = {"environment": [{"variables": {"DB_PASSWORD": "p2", "LOG_LEVEL": "debug"}}]}
    tree = build_tree(before, after)
    variables = child(tree, "environment", 0, "variables")
    assert child(variables, "DB_PASSWORD").after == SENSITIVE
    assert child(variables, "LOG_LEVEL").after == "debug"


def test_name_value_pairs_with_secret_names_are_masked_inside_json():
    defs = '[{"name": "web", "environment": [{"name": "API_TOKEN", "value": "%s"}]}]'
    tree = build_tree({"c": defs % "t1"}, {"c": defs % "t2"})
    assert "t1" not in repr(tree) and "t2" not in repr(tree)


def test_strings_equal_to_a_known_secret_are_masked_anywhere():
    tree = build_tree(None, {"tags": {"note": "hunter2-abc"}}, secrets=frozenset({"hunter2-abc"}))
    assert child(tree, "tags", "note").after == SENSITIVE


def test_lists_of_primitives_show_inserted_elements_only():
    tree = build_tree({"l": ["a", "b", "c"]}, {"l": ["a", "x", "b", "c"]})
    actions = [c.action for _, c in child(tree, "l").children]
    assert actions.count("create") == 1 and actions.count("delete") == 0


def test_secret_name_heuristic():
    assert all(looks_secret(n) for n in ("DB_PASSWORD", "api_key", "GITHUB_TOKEN", "SESSION_SECRET", "AWS_CREDENTIALS"))
    assert not any(looks_secret(n) for n in ("LOG_LEVEL", "REGION", "FEATURE_X"))


def test_path_text_reads_like_terraform():
    assert path_text(("ingress", 0, "cidr_blocks")) == "ingress[0].cidr_blocks"


def test_values_deeper_than_the_limit_become_one_value_that_still_tells_a_change():
    from tfreview.plan.diff import MAX_DEPTH, TOO_DEEP

    def nest(leaf: str):
        return json.loads(deep_json(150, leaf))

    same = build_tree({"x": nest("1")}, {"x": nest("1")})
    changed = build_tree({"x": nest("1")}, {"x": nest("2")})
    assert same.action == "no-op" and changed.action == "update"  # the change below the limit still counts
    node, depth = changed, 0
    while node.children:
        node, depth = node.children[0][1], depth + 1
    assert (depth, node.kind, node.before, node.after, node.note) == (MAX_DEPTH, "value", "{...}", "{...}", TOO_DEEP)


def test_an_unchanged_json_string_is_hidden_without_being_decoded_but_shown_whole_when_it_must_be(monkeypatch):
    from tfreview.plan import diff
    from tfreview.render.lines import node_text

    policy = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]})
    before = {"policy": policy, "size": 1, "items": [{"name": policy, "v": 1}]}
    after = {"policy": policy, "size": 2, "items": [{"name": policy, "v": 2}]}
    decoded = []
    real = diff.jsontext.loads
    monkeypatch.setattr(diff.jsontext, "loads", lambda text: decoded.append(text) or real(text))
    tree = build_tree(before, after, collapse_unchanged=True)
    hidden = child(tree, "policy")
    assert (hidden.action, hidden.kind, hidden.collapsed, hidden.children) == ("no-op", "json", True, ())
    # A changed list element shows its "name" whole (it says which element changed): decoded, as before.
    assert len(decoded) == 1 and child(tree, "items", 0, "name").children
    text = node_text(tree)
    assert "# (1 unchanged attribute hidden)" in text and "policy" not in text
    assert "name = jsonencode(" in text
    # The full tree (`--full`) still decodes and shows every JSON string.
    full = build_tree(before, after)
    assert child(full, "policy").children and node_text(full, full=True).count("s3:GetObject") == 2
