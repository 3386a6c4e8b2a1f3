"""OpenAct: connector kinds (http, sql, redis, s3, email, slack, discord, fs, transform),
saved connections whose secrets live in CredVault, saved actions, AuthFlow OAuth2 and the
SSRF guard of every outbound HTTP call."""
