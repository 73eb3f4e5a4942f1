"""govqa front ends: answers, config, the CLI, the HTTP API and the Telegram bot."""
