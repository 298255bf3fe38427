import(new URL("/editor.js",document.currentScript&&document.currentScript.src||location.href).href);
