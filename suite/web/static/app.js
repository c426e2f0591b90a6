// The netsuite files page: list, download, and upload with tus 1.0.0
// (resumable: an interrupted upload continues where it stopped).
// No build step, no external URLs.
"use strict";

const TUS = "1.0.0";
const CHUNK = 8 * 1024 * 1024;  // bytes per PATCH
const $ = (id) => document.getElementById(id);

// The token is asked once, when the server first answers 401, and given
// to POST /login, which answers with an HttpOnly session cookie: the
// script never keeps the token, and plain links (downloads) carry the
// cookie like every other request of this page.
async function login() {
  const given = window.prompt("Token for this server:");
  if (!given) return false;
  const response = await fetch("/login", { method: "POST", headers: { "Authorization": "Bearer " + given.trim() } });
  if (response.status !== 204) { status(await describeError(response), true); return false; }
  return true;
}
async function call(url, options) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const response = await fetch(url, options || {});
    if (response.status !== 401 || attempt || !(await login())) return response;
  }
}

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function describeError(response) {
  try {
    const body = await response.json();
    return body.error + ": " + body.message;
  } catch (e) {
    return "HTTP " + response.status;
  }
}

// -- listing and downloads ----------------------------------------------------

async function refresh() {
  const response = await call("/files/", { headers: { "Accept": "application/json" } });
  if (!response.ok) { status(await describeError(response), true); return; }
  const files = await response.json();
  const body = $("files");
  body.replaceChildren();
  for (const file of files) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = file.name;
    const size = document.createElement("td");
    size.className = "size";
    size.textContent = file.size;
    const sha = document.createElement("td");
    const code = document.createElement("code");
    code.textContent = file.sha256.slice(0, 16) + "…";
    code.title = file.sha256;
    sha.append(code);
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Download";
    button.dataset.name = file.name;
    button.addEventListener("click", () => download(file.name));
    action.append(button);
    row.append(name, size, sha, action);
    row.dataset.name = file.name;
    body.append(row);
  }
}

function download(name) {
  // A plain link: the browser streams the file to disk (the session cookie
  // carries the authorization), however large it is.
  const link = document.createElement("a");
  link.href = "/files/" + encodeURIComponent(name);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

// -- tus uploads ----------------------------------------------------------------

function b64(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function patch(url, offset, blob, onProgress) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PATCH", url);
    const headers = {
      "Tus-Resumable": TUS,
      "Upload-Offset": String(offset),
      "Content-Type": "application/offset+octet-stream",
    };
    for (const [key, value] of Object.entries(headers)) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (event) => onProgress(offset + event.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the connection failed"));
    xhr.send(blob);
  });
}

async function upload(file) {
  // A URL remembered for this file lets an interrupted upload continue.
  const key = "netsuite-tus:" + [file.name, file.size, file.lastModified].join(":");
  let url = localStorage.getItem(key);
  let offset = 0;
  if (url) {
    const head = await call(url, { method: "HEAD", headers: { "Tus-Resumable": TUS } });
    if (head.ok) offset = Number(head.headers.get("Upload-Offset"));
    else url = null;
  }
  if (!url) {
    const created = await call("/uploads/", {
      method: "POST",
      headers: {
        "Tus-Resumable": TUS,
        "Upload-Length": String(file.size),
        "Upload-Metadata": "filename " + b64(file.name),
      },
    });
    if (created.status !== 201) throw new Error(await describeError(created));
    url = new URL(created.headers.get("Location"), location.href).pathname;
    localStorage.setItem(key, url);
  }
  const show = (done) => {
    $("progress").value = file.size ? Math.floor((100 * done) / file.size) : 100;
    status("uploading " + file.name + ": " + done + " of " + file.size + " bytes");
  };
  show(offset);
  while (offset < file.size) {
    const xhr = await patch(url, offset, file.slice(offset, offset + CHUNK), show);
    if (xhr.status !== 204) {
      let message = "HTTP " + xhr.status;
      try { const body = JSON.parse(xhr.responseText); message = body.error + ": " + body.message; } catch (e) {}
      throw new Error(message);
    }
    offset = Number(xhr.getResponseHeader("Upload-Offset"));
  }
  localStorage.removeItem(key);
  $("progress").value = 100;
  status("stored " + file.name);
}

$("upload").addEventListener("click", async () => {
  const file = $("file").files[0];
  if (!file) { status("choose a file first", true); return; }
  try {
    await upload(file);
  } catch (error) {
    status(error.message, true);
  }
  await refresh();
});

refresh();
