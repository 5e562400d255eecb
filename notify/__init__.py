"""Notifications of alerts: channels (webhook, DingTalk, WeCom, SMS gateway), routing, an outbox
with retries, and escalation of red alerts nobody acknowledged."""
