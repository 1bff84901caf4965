// An upstream OpenID provider for the tests of "Sign in with ..." (issue 17): panva's
// oidc-provider (OpenID Certified), not a stub of ours. Only the parts every deployment writes
// itself are here: the accounts, the client, and the interaction pages (login and consent),
// which a person (Chromium, or a test's HTTP client) fills in.
//
//   node upstream_op.mjs CONFIG.json
//
// CONFIG: { "port": 0, "client_id": "...", "client_secret": "...", "redirect_uris": [...],
//           "accounts": [{ "login": "fay", "password": "...", "email": "...",
//                          "email_verified": true }] }
// Prints one line `ready http://127.0.0.1:PORT` on stdout once it listens, then serves until
// killed. Everything else (oidc-provider's own warnings) goes to stderr.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = new Map(config.accounts.map((account) => [account.login, account]));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const server = createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

// The provider's own signing key: RSA 2048, RS256 (OpenID Connect's default algorithm).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: account.email, email_verified: account.email_verified };
      },
    };
  },
});
const callback = provider.callback();

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params } = details;
  if (req.method === 'GET') {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (prompt.name === 'login') {
      res.end(page('Sign in to the upstream provider', `<form method="post" action="/interaction/${uid}/login">
        <label>User name <input name="login" autocomplete="username"></label>
        <label>Password <input type="password" name="password" autocomplete="current-password"></label>
        <button type="submit">Sign in upstream</button></form>
        <form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>`));
    } else {
      res.end(page('Share your address?', `<p>${escape(params.client_id)} asks for: ${escape(params.scope)}</p>
        <form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>
        <form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>`));
    }
    return;
  }
  const form = await formBody(req);
  if (action === 'login') {
    const account = accounts.get(form.get('login') ?? '');
    if (!account || account.password !== form.get('password')) {
      res.statusCode = 401;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(page('Wrong user name or password', `<a href="/interaction/${uid}">Try again</a>`));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.login } }, { mergeWithLastSubmission: false });
  } else if (action === 'confirm') {
    const { details: missing } = prompt;
    let grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
  } else {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the person cancelled' }, { mergeWithLastSubmission: false });
  }
}

server.on('request', (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(req.url.split('?')[0]);
  if (!match) return callback(req, res);
  interaction(req, res, match[1], match[2]).catch((error) => {
    console.error(error);
    res.statusCode = 400;
    res.end(page('Interaction failed', escape(error.message)));
  });
});

process.on('SIGTERM', () => process.exit(0));
console.log(`ready ${issuer}`);
