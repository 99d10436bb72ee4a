"""wesbot: Slack chat-ops for workflow runs on GA4GH WES servers."""

__version__ = "0.1.0"
