-- wrk script: open registration of a native public client, the request a mail client sends on
-- first contact (draft-ietf-mailmaint-oauth-public).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"redirect_uris":["http://127.0.0.1/callback","com.example.mail:/oauth"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"Example Mail","client_uri":"https://mail.example.org/","software_id":"example-mail","software_version":"4.2","scope":"urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:contacts urn:ietf:params:oauth:scope:calendars offline_access"}]]

local failures = 0
response = function(status, headers, body)
  if status ~= 201 then
    failures = failures + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("non-201 responses: %d\n", summary.errors.status))
end
