-- CredVault: who may resolve a secret. `readers` is a JSON array of TRN patterns (`*` matches
-- any characters) naming the workflows, functions, actions, connections and triggers that may
-- read the value over the bus. Existing secrets keep today's behaviour: any resource of their
-- tenant (`trn:*:{tenant}:*`).
ALTER TABLE vault_secrets ADD COLUMN readers TEXT COLLATE "C";
UPDATE vault_secrets SET readers = json_build_array('trn:*:' || tenant || ':*')::text WHERE readers IS NULL;
