// Letterlock's passkey buttons: "Sign in with a passkey" on the sign-in page, "Add a passkey"
// on the account page. The server speaks JSON with binary members in base64url (WebAuthn §5.1's
// *JSON types); the WebAuthn API takes and gives ArrayBuffers: this script converts between
// them, and nothing else. Served as a file of its own so that the pages' Content-Security-Policy
// allows no inline script.
"use strict";

const base64url = {
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (character) => character.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

async function postJson(url, body, headers) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: Object.assign({ "Content-Type": "application/json" }, headers || {}),
    body: JSON.stringify(body),
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch (_) {
    // An empty or non-JSON body: the status says enough.
  }
  if (!response.ok) {
    throw new Error(answer.error_description || `The server answered ${response.status}.`);
  }
  return answer;
}

function say(element, text) {
  element.textContent = text;
  element.hidden = false;
}

function supported() {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    throw new Error("This browser does not support passkeys.");
  }
}

// Why the browser gave up, in words: it rejects with a DOMException whose name is the reason.
function explain(error) {
  if (error && error.name === "NotAllowedError") {
    return "The passkey request was cancelled or timed out.";
  }
  if (error && error.name === "InvalidStateError") {
    return "This authenticator holds a passkey for this account already.";
  }
  return (error && error.message) || String(error);
}

const signIn = document.getElementById("passkey-sign-in");
if (signIn) {
  signIn.addEventListener("click", async () => {
    const message = document.getElementById("passkey-message");
    message.hidden = true;
    signIn.disabled = true;
    try {
      supported();
      const options = await postJson(signIn.dataset.options, {});
      const credential = await navigator.credentials.get({
        publicKey: {
          challenge: base64url.decode(options.challenge),
          timeout: options.timeout,
          rpId: options.rpId,
          allowCredentials: [],
          userVerification: options.userVerification,
        },
      });
      const response = credential.response;
      const body = {
        credential: {
          id: credential.id,
          rawId: base64url.encode(credential.rawId),
          type: credential.type,
          response: {
            clientDataJSON: base64url.encode(response.clientDataJSON),
            authenticatorData: base64url.encode(response.authenticatorData),
            signature: base64url.encode(response.signature),
          },
        },
      };
      if (response.userHandle) {
        body.credential.response.userHandle = base64url.encode(response.userHandle);
      }
      // What the sign-in form carries on with: an authorization request or a device's code.
      for (const name of ["request", "user_code"]) {
        const field = document.querySelector(`input[type="hidden"][name="${name}"]`);
        if (field) body[name] = field.value;
      }
      const answer = await postJson(signIn.dataset.finish, body);
      window.location.assign(answer.next);
    } catch (error) {
      say(message, explain(error));
      signIn.disabled = false;
    }
  });
}

const add = document.getElementById("passkey-add");
if (add) {
  add.addEventListener("click", async () => {
    const message = document.getElementById("passkey-message");
    message.hidden = true;
    add.disabled = true;
    const headers = { "X-CSRF-Token": add.dataset.csrf };
    try {
      supported();
      const options = await postJson(add.dataset.options, {}, headers);
      const credential = await navigator.credentials.create({
        publicKey: {
          rp: options.rp,
          user: {
            id: base64url.decode(options.user.id),
            name: options.user.name,
            displayName: options.user.displayName,
          },
          challenge: base64url.decode(options.challenge),
          pubKeyCredParams: options.pubKeyCredParams,
          timeout: options.timeout,
          excludeCredentials: options.excludeCredentials.map((descriptor) => ({
            type: descriptor.type,
            id: base64url.decode(descriptor.id),
            transports: descriptor.transports,
          })),
          authenticatorSelection: options.authenticatorSelection,
          attestation: options.attestation,
        },
      });
      const response = credential.response;
      const name = document.getElementById("passkey-name");
      await postJson(
        add.dataset.finish,
        {
          name: name ? name.value : "",
          credential: {
            id: credential.id,
            rawId: base64url.encode(credential.rawId),
            type: credential.type,
            response: {
              clientDataJSON: base64url.encode(response.clientDataJSON),
              attestationObject: base64url.encode(response.attestationObject),
              transports: response.getTransports ? response.getTransports() : [],
            },
          },
        },
        headers,
      );
      window.location.assign(add.dataset.back);
    } catch (error) {
      say(message, explain(error));
      add.disabled = false;
    }
  });
}
