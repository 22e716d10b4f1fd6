// Drives the admin page in headless Chromium: a wrong token first (the page
// must say it was refused), then the right one; sets the operator name,
// waits for a hold on NAMESPACE and for the rate chart of RATE_NAMESPACE
// (bars and the budget's line), screenshots the page at desktop width and
// at 390 px (where nothing may overflow and the hold buttons must be on
// screen and tappable), clicks Reject on that hold, waits for the page to
// confirm, and tries the decision filters. Also checks that the served page
// is proxy/admin/page.html as it is in the tree (the build compiles that
// file in) and that it asks nothing of any other origin.
//
// With a REASON, types it into the hold's reason field before rejecting.
// OPERATOR "-": the token is a named operator's, the page names them.
//
// usage: node admin_page.js URL TOKEN OPERATOR NAMESPACE SCREENSHOT
//                           [RATE_NAMESPACE PHONE_SCREENSHOT RULE REASON]
// Prints one JSON line: {row, sample, message, refused, rates, phone, filters, whoami}.
"use strict";
const fs = require("fs");
const path = require("path");
const { launch, waitUntil } = require("./launch");

const PAGE_FILE = path.join(__dirname, "..", "..", "proxy", "admin", "page.html");
const PHONE = { width: 390, height: 844 };

async function wrongTokenFirst(page) {
  await page.fill("#token", "not-the-token");
  await page.click("#login-form button[type=submit]");
  await page.locator("#token-refused:not([hidden])").waitFor({ timeout: 10000 });
  return { text: await page.textContent("#token-refused"),
           visible: await page.isVisible("#token-refused"),
           form: await page.isVisible("#login-form") };
}

// The chart of `ns`: its bars' heights, its budget lines and their labels.
async function rateChart(page, ns) {
  await waitUntil(page, (ns) => [...document.querySelectorAll("#rates .rate")]
    .some((c) => c.dataset.ns === ns && c.querySelector("rect.rate-bar")), ns, 15000);
  return page.evaluate((ns) => {
    const card = [...document.querySelectorAll("#rates .rate")].find((c) => c.dataset.ns === ns);
    return {
      bars: [...card.querySelectorAll("rect.rate-bar")].map((r) => r.getBoundingClientRect().height),
      lines: [...card.querySelectorAll("line.budget-line")].map((l) => l.getAttribute("data-rule")),
      labels: [...card.querySelectorAll("text.budget-label")].map((t) => t.textContent),
      legend: card.querySelector(".legend").innerText,
    };
  }, ns);
}

// At 390 px: what is wider than the screen, and where the hold's buttons are.
async function phoneLayout(page, namespace, screenshot) {
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(2200);  // one refresh at this width
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  return page.evaluate(({ width, namespace }) => {
    const wide = [...document.querySelectorAll("body *")].filter((e) => {
      const r = e.getBoundingClientRect();
      return r.width > 0 && r.right > width + 0.5;
    }).map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className);
    const row = [...document.querySelectorAll("tr[data-hold]")].find((r) => r.innerText.includes(namespace));
    const buttons = [...row.querySelectorAll("button")].map((b) => {
      const r = b.getBoundingClientRect();
      return { text: b.innerText, left: r.left, right: r.right, height: r.height, width: r.width };
    });
    const small = [...document.querySelectorAll("main button, header button")]
      .filter((b) => b.offsetParent !== null && b.getBoundingClientRect().height < 40)
      .map((b) => b.innerText);
    return { scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 20), buttons, small };
  }, { width: PHONE.width, namespace });
}

// Sets the filters, waits for the list to follow, returns its rows' text.
async function filtered(page, filters) {
  const wanted = "/api/decisions?" + new URLSearchParams({ limit: "50", ...filters }).toString();
  const answered = page.waitForResponse((r) => r.url().endsWith(wanted), { timeout: 10000 });
  await page.click("#filter-clear");
  if (filters.rule) await page.fill("#filter-rule", filters.rule);
  if (filters.ns) await page.fill("#filter-ns", filters.ns);
  if (filters.outcome) await page.selectOption("#filter-outcome", filters.outcome);
  await answered;
  await page.waitForTimeout(300);  // rendered
  return page.$$eval("#decisions tr[data-decision]", (rows) =>
    rows.map((r) => r.innerText.replace(/\s+/g, " ").trim()));
}

async function main() {
  const [url, token, operator, namespace, screenshot, rateNs, phoneShot, rule, reason] =
    process.argv.slice(2);
  if (!screenshot) {
    console.error("usage: node admin_page.js URL TOKEN OPERATOR NAMESPACE SCREENSHOT " +
                  "[RATE_NAMESPACE PHONE_SCREENSHOT RULE]");
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
    const refused = await wrongTokenFirst(page);
    await page.fill("#token", token);
    await page.click("#login-form button[type=submit]");
    if (operator !== "-") {
      await page.fill("#operator", operator);
      await page.dispatchEvent("#operator", "change");
    }
    const row = page.locator("tr[data-hold]", { hasText: namespace });
    await row.first().waitFor({ timeout: 15000 });
    const rates = rateNs ? await rateChart(page, rateNs) : null;
    // Let one more refresh fill every table before the picture.
    await page.waitForSelector("#breakers table", { timeout: 5000 }).catch(() => {});
    await page.waitForTimeout(2200);
    await page.screenshot({ path: screenshot, fullPage: true });
    const phone = phoneShot ? await phoneLayout(page, namespace, phoneShot) : null;
    await page.setViewportSize({ width: 1400, height: 900 });
    const rowText = (await row.first().innerText()).replace(/\s+/g, " ").trim();
    // The sample of documents it would affect: open the list, read it.
    await row.first().locator("details summary").click();
    const sample = await row.first().locator("details pre.doc").allInnerTexts();
    const whoami = await page.isVisible("#whoami") ? await page.textContent("#whoami") : null;
    if (reason) {
      await row.first().locator("input.reason").fill(reason);
      await page.waitForTimeout(2200);  // a refresh must keep what was typed
    }
    await row.first().locator("button.reject").click();
    await waitUntil(page, () => /rejected by/.test(document.getElementById("message").textContent),
                    null, 10000);
    const message = await page.textContent("#message");
    let filters = null;
    if (rule) {
      filters = {
        rule: await filtered(page, { rule }),
        outcome: await filtered(page, { outcome: "rejected" }),
        ns: await filtered(page, { ns: rateNs }),
        none: await filtered(page, { rule, ns: "no-such-db.nothing" }),
      };
    }
    if (errors.length) throw new Error("page errors: " + errors.join("; "));
    if (foreign.length) throw new Error("requests to other origins: " + foreign.join(" "));
    console.log(JSON.stringify({ row: rowText, sample, message, refused, rates, phone, filters, whoami }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
