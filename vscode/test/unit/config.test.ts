import assert from "node:assert/strict";
import { test } from "node:test";
import { credentialsPath, parseCredentials, resolveConnection } from "../../src/config";

const FILE = `current = "staging"

["default"]
url = "http://127.0.0.1:53000"
api_key = "aio_default"

["staging"]
url = "https://staging.example/"
api_key = "aio_with_\\"quote\\""
`;

test("parses the credentials file that aio login writes", () => {
  const c = parseCredentials(FILE);
  assert.equal(c.current, "staging");
  assert.deepEqual(Object.keys(c.profiles), ["default", "staging"]);
  assert.equal(c.profiles.staging.api_key, 'aio_with_"quote"');
});

test("settings beat the environment, which beats the profile", () => {
  const read = () => FILE;
  const env = { HOME: "/home/u" };
  assert.deepEqual(resolveConnection({}, env, read), { url: "https://staging.example", apiKey: 'aio_with_"quote"', profile: "staging" });
  assert.equal(resolveConnection({ profile: "default" }, env, read).apiKey, "aio_default");
  assert.equal(resolveConnection({}, { ...env, AIONIX_URL: "http://env:1" }, read).url, "http://env:1");
  assert.equal(resolveConnection({ serverUrl: "http://set:2/" }, { ...env, AIONIX_URL: "http://env:1" }, read).url, "http://set:2");
  assert.deepEqual(resolveConnection({}, env, () => ""), { url: "http://127.0.0.1:53000", apiKey: undefined, profile: "default" });
});

test("the credentials path follows the CLI's", () => {
  assert.equal(credentialsPath({ HOME: "/home/u" }), "/home/u/.config/aionix/credentials");
  assert.equal(credentialsPath({ HOME: "/home/u", AIONIX_SECURITY_CREDENTIALS_FILE: "/tmp/c" }), "/tmp/c");
});
