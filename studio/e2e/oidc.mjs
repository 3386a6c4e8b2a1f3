// The Studio's sign-in in a real browser: OpenID Connect against a real provider (the certified
// npm `oidc-provider`, started by tests/iam/test_oidc_e2e.py on loopback) and a local user.
// Usage: node e2e/oidc.mjs <server-url> <oidc-login> <local-user> <local-password>
// Prints one line per step and "N passed, N failed"; exits non-zero when a step failed.
import { launch } from "./browser.mjs";

const [url, oidcLogin, localUser, localPassword] = process.argv.slice(2);
if (!url || !oidcLogin || !localUser || !localPassword) {
  console.error("usage: node e2e/oidc.mjs <server-url> <oidc-login> <local-user> <local-password>");
  process.exit(2);
}
const TIMEOUT = 30_000;
const results = [];
const { context, close } = await launch();
context.setDefaultTimeout(TIMEOUT);
const page = context.pages()[0] ?? (await context.newPage());
// the provider's development login page imports a web font: nothing leaves the machine
await context.route((u) => !u.hostname.startsWith("127.0.0.1"), (route) => route.abort());

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, e]);
    console.log(`not ok - ${name}: ${String(e?.message ?? e).split("\n").slice(0, 6).join("\n    ")}`);
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

/** Sign out through the account menu in the header. */
async function signOut() {
  await page.click("[data-testid=whoami]");
  await page.getByRole("button", { name: "Sign out" }).click();
}

await step("the sign-in page offers single sign-on", async () => {
  await page.goto(url + "/workflows");
  await page.waitForSelector("[data-testid=sso-signin]");
  const text = await page.textContent("[data-testid=sso-signin]");
  check(text.includes("Test IdP"), `button says ${text}`);
});

await step("OIDC sign-in: the provider's login page, then back in the Studio", async () => {
  await page.click("[data-testid=sso-signin]");
  await page.waitForSelector("input[name=login]");
  check(!page.url().startsWith(url), `expected the provider's page, at ${page.url()}`);
  await page.fill("input[name=login]", oidcLogin);
  await page.fill("input[name=password]", "any password");
  await page.click("button[type=submit]");
  // the provider asks a native client's user to confirm (its consent page): continue
  const consent = page.locator("input[name=prompt][value=consent]");
  await page.waitForSelector("[data-testid=whoami], input[name=prompt][value=consent]", { state: "attached" });
  if (await consent.count()) await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  const who = await page.textContent("[data-testid=whoami]");
  check(who.includes("role admin"), `whoami says ${who}`); // the mapped group gives the admin role
  // the header names the user, not a key
  const name = (await page.textContent("[data-testid=whoami-name]")).trim();
  check(name && !name.startsWith("key "), `the header names ${name}`);
});

await step("the one-time code left the URL and the page came back to where it started", async () => {
  const now = new URL(page.url());
  check(!now.search.includes("aionix_signin"), `URL still has the code: ${page.url()}`);
  check(now.pathname === "/workflows", `at ${now.pathname}`);
  const stored = await page.evaluate(() => ({ access: sessionStorage.getItem("aionix.key"), refresh: sessionStorage.getItem("aionix.refresh") }));
  check(stored.access && stored.access.split(".").length === 3, "no access token (JWT) in session storage");
  check(stored.refresh && stored.refresh.startsWith("aior_"), "no refresh token in session storage");
});

await step("a reload keeps the session (the refresh token renews it)", async () => {
  await page.reload();
  await page.waitForSelector("[data-testid=whoami]");
});

await step("sign out ends the session", async () => {
  const refresh = await page.evaluate(() => sessionStorage.getItem("aionix.refresh"));
  await signOut();
  await page.waitForSelector("#api-key");
  // the server revoked it: using it now fails
  let status = 0;
  for (let i = 0; i < 20 && status !== 401; i++) {
    const r = await fetch(url + "/api/v1/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refresh }),
    });
    status = r.status;
    if (status !== 401) await new Promise((done) => setTimeout(done, 250));
  }
  check(status === 401, `the signed-out refresh token answered ${status}`);
});

await step("a local user signs in with a password", async () => {
  await page.fill("#signin-user", localUser);
  await page.fill("#signin-password", "wrong password");
  await page.click("form.signin-local button[type=submit]");
  await page.waitForSelector("text=That user name and password were not accepted.");
  await page.fill("#signin-password", localPassword);
  await page.click("form.signin-local button[type=submit]");
  await page.waitForSelector("[data-testid=whoami]");
  const who = await page.textContent("[data-testid=whoami]");
  check(who.includes("role operator"), `whoami says ${who}`);
  const name = (await page.textContent("[data-testid=whoami-name]")).trim();
  check(name === localUser, `the header names ${name}, not ${localUser}`);
});

await step("a failed single sign-on says why", async () => {
  await signOut();
  await page.waitForSelector("#api-key");
  await page.goto(url + "/api/v1/auth/oidc/callback?code=x&state=made-up");
  await page.waitForSelector("text=Single sign-on failed");
});

await close();
const failed = results.filter(([, e]) => e).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
