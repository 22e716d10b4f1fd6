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

module.exports = { launch };
