// The certified OpenID Connect provider (npm `oidc-provider`, panva) on loopback, for the OIDC
// sign-in tests: a real issuer with discovery, JWKS, authorization code + PKCE and ID tokens.
// Its built-in "dev interactions" login page accepts any login name (any password); the account's
// `groups` claim comes from the config. Consent is granted automatically for the test client.
//
//   node provider.mjs <config.json>
//   config: {"port_file": "...", "client_id": "...", "client_secret": "...",
//            "redirect_uris": ["..."], "groups": {"alice": ["eng", "ops"]}, "ttl_id_token": 600}
import fs from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client_id,
      // native: loopback redirect URIs match on any port (RFC 8252 7.3), so the test need not
      // know the Aionix server's port (it binds port 0) before the provider starts
      application_type: "native",
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile", "groups"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
  conformIdTokenClaims: false, // scope claims (groups) in the ID token itself
  cookies: { keys: ["aionix-test-cookie-key-not-secret"] },
  ttl: { IdToken: config.ttl_id_token || 600 },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.test`,
          email_verified: true,
          name: id,
          groups: (config.groups || {})[id] || [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile groups");
    grant.addOIDCClaims(["groups", "email", "name"]);
    await grant.save();
    return grant;
  },
});
provider.on("server_error", (ctx, err) => console.error("server_error", err));
server.on("request", provider.callback());
fs.writeFileSync(config.port_file + ".tmp", String(port));
fs.renameSync(config.port_file + ".tmp", config.port_file);
console.log(`oidc-provider listening on ${issuer}`);
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
