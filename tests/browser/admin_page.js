// Drives the admin page in headless Chromium: log in with the token, set the
// operator name, wait for a hold on NAMESPACE, screenshot the page, click
// Reject on that hold, and wait for the page to confirm. Also checks that
// the served page is proxy/admin/page.html as it is in the tree (the build
// compiles that file in) and that it asks nothing of any other origin.
//
// usage: node admin_page.js URL TOKEN OPERATOR NAMESPACE SCREENSHOT
// Prints one JSON line: {row, message}.
"use strict";
const fs = require("fs");
const path = require("path");
const { launch } = require("./launch");

const PAGE_FILE = path.join(__dirname, "..", "..", "proxy", "admin", "page.html");

async function main() {
  const [url, token, operator, namespace, screenshot] = process.argv.slice(2);
  if (!screenshot) {
    console.error("usage: node admin_page.js URL TOKEN OPERATOR NAMESPACE SCREENSHOT");
    process.exit(2);
  }
  const browser = await launch();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => d.accept(operator));  // the operator prompt, if it asks
    const foreign = [];
    page.on("request", (r) => {
      if (new URL(r.url()).origin !== new URL(url).origin) foreign.push(r.url());
    });
    const served = await page.goto(url);
    if ((await served.text()) !== fs.readFileSync(PAGE_FILE, "utf8")) {
      throw new Error("the served page differs from " + PAGE_FILE);
    }
    await page.fill("#token", token);
    await page.click("#login-form button[type=submit]");
    await page.fill("#operator", operator);
    await page.dispatchEvent("#operator", "change");
    const row = page.locator("tr[data-hold]", { hasText: namespace });
    await row.first().waitFor({ timeout: 15000 });
    // Let one more refresh fill every table before the picture.
    await page.waitForSelector("#breakers table", { timeout: 5000 }).catch(() => {});
    await page.waitForTimeout(2200);
    await page.screenshot({ path: screenshot, fullPage: true });
    const rowText = (await row.first().innerText()).replace(/\s+/g, " ").trim();
    await row.first().locator("button.reject").click();
    await page.waitForFunction(() => /rejected by/.test(document.getElementById("message").textContent),
                               null, { timeout: 10000 });
    const message = await page.textContent("#message");
    if (errors.length) throw new Error("page errors: " + errors.join("; "));
    if (foreign.length) throw new Error("requests to other origins: " + foreign.join(" "));
    console.log(JSON.stringify({ row: rowText, message }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
