// The Restorable panel's buttons: logs in, names the operator, waits for
// NAMESPACE's row, clicks Dry run, then Restore (accepting the confirmation
// it asks for), and reports the message each click left.
//
// usage: node page_restore.js URL TOKEN NAMESPACE OPERATOR
// Prints one JSON line: {dry, restored, dialogs}.
"use strict";
const { launch, waitUntil } = require("./launch");

async function messageAfter(page, click) {
  await page.evaluate(() => { document.getElementById("message").textContent = ""; });
  await click();
  const message = page.locator("#message");
  await waitUntil(page, () => document.getElementById("message").textContent !== "", null, 30000);
  return { text: await message.textContent(), kind: await message.getAttribute("class") };
}

async function main() {
  const [url, token, namespace, operator] = process.argv.slice(2);
  if (!operator) {
    console.error("usage: node page_restore.js URL TOKEN NAMESPACE OPERATOR");
    process.exit(2);
  }
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const dialogs = [];
    page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
    await page.goto(url);
    await page.fill("#token", token);
    await page.click("#login-form button[type=submit]");
    await page.fill("#operator", operator);
    const row = page.locator(`#restorable tr[data-ns="${namespace}"]`);
    await row.waitFor({ timeout: 15000 });
    const dry = await messageAfter(page, () => row.locator("button[data-action=restore-dry]").click());
    const restored = await messageAfter(page, () => row.locator("button[data-action=restore]").click());
    console.log(JSON.stringify({ dry, restored, dialogs }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
