// Client-chosen text on the admin page must stay text: logs in, waits for
// the hold on NAMESPACE and for the Restorable panel, opens the hold's
// preview, and reports whether any script the data carried ran, or any
// element it carried was built.
//
// usage: node page_injection.js URL TOKEN NAMESPACE
// Prints one JSON line: {ran, images, scripts, preview, restorable}.
"use strict";
const { launch } = require("./launch");

async function main() {
  const [url, token, namespace] = process.argv.slice(2);
  if (!namespace) {
    console.error("usage: node page_injection.js URL TOKEN NAMESPACE");
    process.exit(2);
  }
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const dialogs = [];
    page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
    await page.goto(url);
    await page.fill("#token", token);
    await page.click("#login-form button[type=submit]");
    const row = page.locator("tr[data-hold]", { hasText: namespace });
    await row.first().waitFor({ timeout: 15000 });
    await page.locator("#restorable-section:not([hidden]) table").waitFor({ timeout: 15000 });
    await row.first().locator("details summary").click();
    await page.waitForTimeout(500);
    const seen = await page.evaluate(() => ({
      ran: window.__injected || null,
      images: document.querySelectorAll("main img").length,
      scripts: document.querySelectorAll("main script").length,
      preview: (document.querySelector("tr[data-hold] details") || {}).innerText || "",
      restorable: document.getElementById("restorable").innerText,
    }));
    seen.dialogs = dialogs;
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
