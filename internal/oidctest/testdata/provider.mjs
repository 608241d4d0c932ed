// A real OpenID Connect provider for Wharf's single sign-on tests:
// panva's oidc-provider (npm), which scripts/test installs into .tools/.
// It listens on a free loopback port and prints its issuer URL on the first
// line of stdout.
//
//   OIDC_PROVIDER_DIR  the oidc-provider package folder (node_modules/oidc-provider)
//   OIDC_TEST_CONFIG   JSON: {"clients": [oidc-provider client metadata...],
//                            "accounts": {"<login>": {<claims>}}}
//
// Sign-in uses the provider's own development interactions: a login form
// (field "login"; the account is the login typed) and a consent form. An
// account not in "accounts" signs in with no claims but sub.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
const { default: Provider } = await import(pathToFileURL(path.join(dir, 'lib', 'index.js')).href);
const config = JSON.parse(process.env.OIDC_TEST_CONFIG);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients,
  // Every client must use PKCE, so that a relying party that forgets it fails.
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // Put the scopes' claims in the ID token, as most providers do.
  conformIdTokenClaims: false,
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, ...(config.accounts[id] ?? {}) }),
  }),
  cookies: { keys: ['wharf-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});
// oidc-provider logs a warning for development interactions; expected here.
server.on('request', provider.callback());
console.log(issuer);
