// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Drives Debian's chromium (headless, through puppeteer-core, no download) to noVNC consoles
// served by gateway-proxy, for tests/integration/test_lab_browser.py.
//
//   node novnc-console.js '{"visits": [{"url": "...", "expect": "console" | "fails" | "refused"}], "timeout": ms}'
//
// Prints one JSON object per visit, in order, as a JSON array on stdout:
//   {"status": HTTP status of the page, "url": where it ended, "connected": bool, "failed": bool,
//    "statusText": noVNC's status line, "canvas": {width, height, nonblack, colors} | null,
//    "websockets": [status of each WebSocket handshake the page made], "error": string | null}
// A "console" visit waits until noVNC says it is connected and the framebuffer holds non-black
// pixels, a "fails" visit until noVNC shows an error (or the timeout); a "refused" visit only
// loads the page.
// puppeteer-core comes from build-tools/puppeteer (scripts/install-deps), found via NODE_PATH.
'use strict';

const puppeteer = require('puppeteer-core');

function framebuffer() {
    const c = document.querySelector('#noVNC_container canvas');
    if (!c || !c.width || !c.height)
        return null;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colors = new Set();
    let nonblack = 0;
    for (let i = 0; i < d.length; i += 4) {
        if (d[i] | d[i + 1] | d[i + 2])
            nonblack++;
        if (colors.size < 64)
            colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    }
    return { width: c.width, height: c.height, nonblack, colors: colors.size };
}

function state() {
    const s = document.querySelector('#noVNC_status');
    return {
        connected: document.documentElement.classList.contains('noVNC_connected'),
        failed: !!(s && s.classList.contains('noVNC_status_error')),
        statusText: s ? s.textContent.trim() : null,
    };
}

async function visit(browser, v, timeout) {
    const page = await browser.newPage();
    const result = { status: 0, url: null, connected: false, statusText: null, canvas: null, websockets: [], error: null };
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketHandshakeResponseReceived', e => result.websockets.push(e.response.status));
    page.on('console', m => process.stderr.write(`console: ${m.type()}: ${m.text()}\n`));
    page.on('pageerror', e => process.stderr.write(`pageerror: ${e.message}\n`));
    page.on('requestfailed', r => process.stderr.write(`requestfailed: ${r.url()}: ${r.failure().errorText}\n`));
    page.on('response', r => { if (r.status() >= 400) process.stderr.write(`response: ${r.status()} ${r.url()}\n`); });
    try {
        const response = await page.goto(v.url, { waitUntil: 'load', timeout });
        result.status = response ? response.status() : 0;
        result.url = page.url();
        if (v.expect === 'console') {
            await page.waitForFunction(`(${state})().connected && ((${framebuffer})() || {}).nonblack > 0`,
                                       { timeout, polling: 100 });
        } else if (v.expect === 'fails') {
            await page.waitForFunction(`(${state})().failed`, { timeout, polling: 100 });
        }
    } catch (e) {
        result.error = String(e.message || e);
    }
    try {
        Object.assign(result, await page.evaluate(state));
        result.canvas = await page.evaluate(framebuffer);
    } catch (e) {
        result.error = result.error || String(e.message || e);
    }
    await page.close();
    return result;
}

(async () => {
    const args = JSON.parse(process.argv[2]);
    const timeout = args.timeout || 20000;
    const browser = await puppeteer.launch({
        executablePath: args.chromium || '/usr/bin/chromium',
        headless: true,
        // As root chromium's own sandbox cannot start; the test machine is the sandbox here.
        args: [...(process.getuid() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage',
               '--no-first-run', '--no-default-browser-check'],
    });
    try {
        const results = [];
        for (const [i, v] of args.visits.entries()) {
            process.stderr.write(`visit ${i}: ${v.url}\n`);
            results.push(await visit(browser, v, timeout));
        }
        process.stdout.write(JSON.stringify(results) + '\n');
    } finally {
        await browser.close();
    }
})().catch(e => {
    process.stderr.write(`novnc-console: ${e.stack || e}\n`);
    process.exit(1);
});
