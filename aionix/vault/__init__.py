"""CredVault: encrypted, versioned secrets (envelope encryption under a master key), with
Secrets Manager style stages, audited reveal and resolution over the executor bus."""
