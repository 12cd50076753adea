"""The status page in the template: publishing it behind CloudFront is an explicit opt-in, off by default."""

from __future__ import annotations

from tests.helpers.template import props, raw_template, sub_text, walk


def _site_puts(statements: object) -> list[str]:
    return [
        text
        for node in walk(statements)
        if isinstance(node, dict) and node.get("Action") == "s3:PutObject"
        for text in [sub_text(node.get("Resource"))]
        if text and text.startswith("${SiteBucket.Arn}")
    ]


def test_publishing_the_status_page_is_a_parameter_that_defaults_to_off() -> None:
    parameter = raw_template()["Parameters"]["PublishStatusPage"]
    assert parameter["Default"] == "false" and parameter["AllowedValues"] == ["true", "false"]
    assert "operational detail" in parameter["Description"]
    assert raw_template()["Conditions"]["PublishesStatusPage"] == {
        "Fn::Equals": [{"Ref": "PublishStatusPage"}, "true"]
    }
    # and the summary learns it from its environment
    variables = props("SummaryFunction")["Environment"]["Variables"]
    assert variables["STATUS_PAGE_PUBLIC"] == {"Ref": "PublishStatusPage"}


def test_the_summary_may_write_the_public_copy_only_under_the_condition() -> None:
    policies = props("SummaryFunction")["Policies"]
    # Given the summary's statements / Then its only site-bucket write sits inside the opt-in's If
    conditional = [
        node["Fn::If"]
        for node in walk(policies)
        if isinstance(node, dict) and "Fn::If" in node and node["Fn::If"][0] == "PublishesStatusPage"
    ]
    assert len(conditional) == 1
    _, when_on, when_off = conditional[0]
    assert _site_puts(when_on) == ["${SiteBucket.Arn}/live/status/index.html"]
    assert when_off == {"Ref": "AWS::NoValue"}
    assert _site_puts(policies) == ["${SiteBucket.Arn}/live/status/index.html"]  # nowhere else
