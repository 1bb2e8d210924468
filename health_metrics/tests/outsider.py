from health_metrics.tests.factories import ReadingFactory, TargetFactory

OUTSIDER_FACTORIES = {
    "reading": lambda owner: ReadingFactory(user=owner),
    "target": lambda owner: TargetFactory(user=owner),
}
