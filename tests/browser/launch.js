// Headless Chromium as every browser test starts it (Debian's chromium, or
// $CHROMIUM), nothing of it talking to the network on its own.
"use strict";
const { chromium } = require("playwright-core");

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

// Waits until fn(arg), run in the page, is true. page.waitForFunction
// compiles its predicate with eval, which the admin page's
// Content-Security-Policy forbids (as it should); page.evaluate does not.
async function waitUntil(page, fn, arg, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${fn}`);
    await page.waitForTimeout(100);
  }
}

module.exports = { launch, waitUntil };
