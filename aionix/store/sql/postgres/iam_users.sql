-- name: insert_user
INSERT INTO iam_users (id, tenant, name, email, role, source, subject, password_hash, disabled, created_at, updated_at)
VALUES (:id, :tenant, :name, :email, :role, :source, :subject, :password_hash, 0, :now, :now)

-- name: get_user
SELECT id, tenant, name, email, role, source, subject, password_hash, disabled, created_at, updated_at, last_login_at
FROM iam_users WHERE tenant = :tenant AND name = :name /*tx: FOR UPDATE*/

-- name: get_user_by_id
SELECT id, tenant, name, email, role, source, subject, password_hash, disabled, created_at, updated_at, last_login_at
FROM iam_users WHERE id = :id

-- name: get_user_by_subject
SELECT id, tenant, name, email, role, source, subject, password_hash, disabled, created_at, updated_at, last_login_at
FROM iam_users WHERE tenant = :tenant AND source = :source AND subject = :subject

-- name: list_users
SELECT id, tenant, name, email, role, source, subject, disabled, created_at, updated_at, last_login_at
FROM iam_users WHERE tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR name > :cursor)
ORDER BY name LIMIT :limit

-- name: update_user
UPDATE iam_users SET role = :role, email = :email, disabled = :disabled, updated_at = :now
WHERE tenant = :tenant AND name = :name

-- name: set_password
UPDATE iam_users SET password_hash = :password_hash, updated_at = :now WHERE tenant = :tenant AND name = :name

-- name: touch_login
UPDATE iam_users SET last_login_at = :now, email = coalesce(:email, email) WHERE id = :id

-- name: delete_user
DELETE FROM iam_users WHERE tenant = :tenant AND name = :name

-- name: delete_user_memberships
DELETE FROM iam_group_members WHERE user_id = :user_id

-- name: insert_group
INSERT INTO iam_groups (tenant, name, description, created_at) VALUES (:tenant, :name, :description, :now)

-- name: insert_group_if_absent
INSERT INTO iam_groups (tenant, name, description, created_at) VALUES (:tenant, :name, :description, :now)
ON CONFLICT (tenant, name) DO NOTHING

-- name: get_group
SELECT tenant, name, description, created_at FROM iam_groups WHERE tenant = :tenant AND name = :name

-- name: list_groups
SELECT g.tenant, g.name, g.description, g.created_at,
       (SELECT count(*) FROM iam_group_members m WHERE m.tenant = g.tenant AND m.group_name = g.name) AS members
FROM iam_groups g WHERE g.tenant = :tenant AND (CAST(:cursor AS TEXT) IS NULL OR g.name > :cursor)
ORDER BY g.name LIMIT :limit

-- name: delete_group
DELETE FROM iam_groups WHERE tenant = :tenant AND name = :name

-- name: delete_group_members
DELETE FROM iam_group_members WHERE tenant = :tenant AND group_name = :name

-- name: add_member
INSERT INTO iam_group_members (tenant, group_name, user_id, source, added_at)
VALUES (:tenant, :group_name, :user_id, :source, :now)
ON CONFLICT (tenant, group_name, user_id) DO NOTHING

-- name: remove_member
DELETE FROM iam_group_members WHERE tenant = :tenant AND group_name = :group_name AND user_id = :user_id

-- name: remove_oidc_members
DELETE FROM iam_group_members WHERE user_id = :user_id AND source = 'oidc'

-- name: list_members
SELECT u.id, u.name, u.email, u.role, u.source, m.source AS membership, m.added_at
FROM iam_group_members m JOIN iam_users u ON u.id = m.user_id
WHERE m.tenant = :tenant AND m.group_name = :group_name ORDER BY u.name

-- name: user_groups
SELECT group_name FROM iam_group_members WHERE user_id = :user_id ORDER BY group_name

-- name: insert_signing_key
INSERT INTO iam_signing_keys (kid, alg, private_sealed, public_jwk, created_at) VALUES (:kid, :alg, :private_sealed, :public_jwk, :now)

-- name: retire_signing_keys
UPDATE iam_signing_keys SET retired_at = :now WHERE retired_at IS NULL AND kid != :kid

-- name: signing_keys
SELECT kid, alg, private_sealed, public_jwk, created_at, retired_at FROM iam_signing_keys
WHERE retired_at IS NULL OR retired_at > :since ORDER BY created_at DESC

-- name: prune_signing_keys
DELETE FROM iam_signing_keys WHERE retired_at IS NOT NULL AND retired_at < :before

-- name: insert_refresh
INSERT INTO iam_refresh_tokens (id, family, hash, tenant, subject_kind, subject_id, created_at, expires_at)
VALUES (:id, :family, :hash, :tenant, :subject_kind, :subject_id, :now, :expires_at)

-- name: refresh_by_hash
SELECT id, family, hash, tenant, subject_kind, subject_id, created_at, expires_at, used_at, revoked_at
FROM iam_refresh_tokens WHERE hash = :hash /*tx: FOR UPDATE*/

-- name: use_refresh
UPDATE iam_refresh_tokens SET used_at = :now WHERE id = :id AND used_at IS NULL AND revoked_at IS NULL

-- name: revoke_family
UPDATE iam_refresh_tokens SET revoked_at = :now WHERE family = :family AND revoked_at IS NULL

-- name: revoke_subject
UPDATE iam_refresh_tokens SET revoked_at = :now WHERE subject_kind = :subject_kind AND subject_id = :subject_id AND revoked_at IS NULL

-- name: prune_refresh
DELETE FROM iam_refresh_tokens WHERE expires_at < :before

-- name: insert_oidc_flow
INSERT INTO iam_oidc_flows (state_hash, nonce, verifier_sealed, redirect_uri, return_to, created_at)
VALUES (:state_hash, :nonce, :verifier_sealed, :redirect_uri, :return_to, :now)

-- name: get_oidc_flow
SELECT state_hash, nonce, verifier_sealed, redirect_uri, return_to, created_at FROM iam_oidc_flows WHERE state_hash = :state_hash

-- name: delete_oidc_flow
DELETE FROM iam_oidc_flows WHERE state_hash = :state_hash

-- name: count_oidc_flows
SELECT count(*) AS n FROM iam_oidc_flows

-- name: prune_oidc_flows
DELETE FROM iam_oidc_flows WHERE created_at < :before

-- name: insert_oidc_handoff
INSERT INTO iam_oidc_handoffs (code_hash, session_sealed, created_at) VALUES (:code_hash, :session_sealed, :now)

-- name: get_oidc_handoff
SELECT code_hash, session_sealed, created_at FROM iam_oidc_handoffs WHERE code_hash = :code_hash

-- name: delete_oidc_handoff
DELETE FROM iam_oidc_handoffs WHERE code_hash = :code_hash

-- name: prune_oidc_handoffs
DELETE FROM iam_oidc_handoffs WHERE created_at < :before
