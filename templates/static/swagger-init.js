// Swagger UI for /schema/swagger, loaded from our own /static: the page carries no inline script,
// so it works under the Content-Security-Policy every page sends.
window.addEventListener("DOMContentLoaded", function () {
  SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-container",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
