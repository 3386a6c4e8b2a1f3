"""Governance: policies on TRNs, users and tokens, tenants and quotas, the audit chain."""
